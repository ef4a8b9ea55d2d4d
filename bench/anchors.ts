/**
 * What two well-known lease implementations' defaults imply for a handover. Computed from
 * their defaults and their retry loops, not measured; shown beside the handover figures.
 */

export interface Anchor {
  name: string;
  defaults: string;
  graceful: string;
  crash: string;
  source: string;
}

export const ANCHORS: readonly Anchor[] = Object.freeze([
  {
    name: "client-go leader election",
    defaults:
      "LeaseDuration 15 s, RenewDeadline 10 s, RetryPeriod 2 s; a candidate that does not lead tries every RetryPeriod × 1 to 2.2 (JitterFactor 1.2)",
    graceful:
      "with ReleaseOnCancel the leader writes an empty holder; a follower takes the lease at its next try: up to 2 s (RetryPeriod), up to 4.4 s with the jitter",
    crash:
      "a follower takes the lease once it has seen the record unchanged for LeaseDuration, at its next try: about 15 s + 2 s = 17 s, up to 19.4 s with the jitter",
    source:
      'kubernetes/kubernetes: staging/src/k8s.io/client-go/tools/leaderelection/leaderelection.go (JitterFactor, acquire\'s wait.JitterUntil, the "core clients default" comments, release) and staging/src/k8s.io/component-base/config/v1alpha1/defaults.go (RecommendedDefaultLeaderElectionConfiguration)',
  },
  {
    name: "node-redlock v5",
    defaults:
      "retryCount 10, retryDelay 200 ms, retryJitter 100 ms (its README's example sets 200 ms); each try waits retryDelay ± retryJitter",
    graceful:
      "release deletes the key; a waiting acquirer takes it at its next try: up to 300 ms, up to 400 ms with the README's 200 ms jitter",
    crash:
      "the key lives out the lock's TTL; a waiter takes it at its next try after that, if it is still trying: with 10 retries of about 200 ms it gives up after about 2 s",
    source:
      "mike-marcacci/node-redlock: src/index.ts (defaultSettings, _execute's retry wait, release) and README.md (configuration example)",
  },
]);
