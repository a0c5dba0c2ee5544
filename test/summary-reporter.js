// Prints why suites were skipped (the CUDA tests name the reason in their title), then the last line
// CI reads: "N passed, N failed, N skipped".
class SummaryReporter {
  onRunComplete(_contexts, results) {
    const reasons = new Set();
    for (const file of results.testResults) {
      for (const t of file.testResults) {
        if (t.status !== 'pending' && t.status !== 'skipped') continue;
        const why = t.ancestorTitles.find((a) => /\[skipped: /.test(a));
        if (why) reasons.add(why);
      }
    }
    for (const r of reasons) process.stdout.write(`\nskipped: ${r}`);
    const passed = results.numPassedTests;
    const failed = results.numFailedTests + results.numRuntimeErrorTestSuites;
    const skipped = results.numPendingTests + results.numTodoTests;
    process.stdout.write(`\n${passed} passed, ${failed} failed, ${skipped} skipped\n`);
  }
}
module.exports = SummaryReporter;
