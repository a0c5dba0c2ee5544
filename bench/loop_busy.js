// How long the JS thread ran without a break while some work was in flight, in CPU time: the most
// on-CPU time the thread used between two ticks of a 2 ms timer (Linux: /proc/thread-self/schedstat,
// read on the JS thread itself). Unlike the wall-clock gap between ticks it does not grow when a
// loaded machine leaves the process unscheduled, so it tells on a busy 2-core machine what the
// event-loop delay would be on an idle one. Elsewhere it is null and only the wall gap is given.
const fs = require('fs');

const STAT = '/proc/thread-self/schedstat';
function threadCpuNs() {
  try {
    return Number(fs.readFileSync(STAT, 'utf8').split(' ')[0]);
  } catch {
    return null;
  }
}

// Starts the probe; stop() returns { maxBusyMs, maxGapMs, ticks }.
function startBusyProbe(intervalMs = 2) {
  let lastCpu = threadCpuNs(), last = performance.now(), maxBusyNs = 0, maxGapMs = 0, ticks = 0;
  const tick = () => {
    const now = performance.now(), cpu = threadCpuNs();
    if (cpu !== null && lastCpu !== null) maxBusyNs = Math.max(maxBusyNs, cpu - lastCpu);
    maxGapMs = Math.max(maxGapMs, now - last);
    last = now;
    lastCpu = threadCpuNs(); // after the reads, so the probe's own work is not counted
    ticks++;
  };
  const timer = setInterval(tick, intervalMs);
  timer.unref(); // a probe never keeps the process alive
  return {
    stop() {
      tick();
      clearInterval(timer);
      return { maxBusyMs: lastCpu === null ? null : maxBusyNs / 1e6, maxGapMs, ticks };
    },
  };
}

module.exports = { startBusyProbe, threadCpuNs };
