// Worker thread entry of the image pool: decodes and resizes files, replies per job.
import { parentPort } from 'worker_threads';
import { ImageInputError, loadImageFile } from './image_decode';

parentPort?.on('message', (job: { id: number; file: string; size: number }) => {
  try {
    const img = loadImageFile(job.file, job.size);
    parentPort!.postMessage({ id: job.id, rgb: img.rgb }, [img.rgb.buffer as ArrayBuffer]);
  } catch (e) {
    const reason = e instanceof ImageInputError ? e.reason : `cannot decode (${(e as Error).message})`;
    parentPort!.postMessage({ id: job.id, error: reason });
  }
});
