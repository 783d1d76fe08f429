/**
 * Why a test cannot run here → its `skip` option. On a developer's machine a missing tool or root skips the test
 * with the reason; in CI (`RIGCAM_CI=1`, set by .ci/run, which installs everything and runs as root) the same
 * reason fails the file instead: a test that skips in CI is a failure, not a pass.
 */
export function skipUnlessCi(reason: string | null | false | undefined): string | false {
  if (!reason) return false;
  if (process.env.RIGCAM_CI === '1') throw new Error(`this test must run in CI, but here: ${reason}`);
  return reason;
}
