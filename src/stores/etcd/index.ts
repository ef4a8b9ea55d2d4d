/**
 * `globalclock/etcd`: the clock as one etcd key, on a client of the caller's
 * (`new EtcdStore({ client })`) or one made from a URL (`open`). `etcd3` is an optional
 * peer dependency, loaded only here.
 */
import type { OpenOptions } from "../../store.js";
import { etcdFaultHandling } from "./policy.js";
import { DEFAULT_ETCD_TIMEOUT_MS, EtcdStore } from "./store.js";
import { parseEtcdUrl } from "./url.js";

export type { EtcdCallOptions, EtcdClient, EtcdTxn, EtcdTxnResult, EtcdWatcher } from "./client.js";
export {
  DEFAULT_ETCD_KEY,
  DEFAULT_ETCD_TIMEOUT_MS,
  EtcdStore,
  type EtcdStoreOptions,
} from "./store.js";
export { type EtcdUrl, parseEtcdUrl } from "./url.js";

/** Opens `etcd://…` on a client of its own, which closing the store closes. */
export async function open(url: string, _options: OpenOptions = {}): Promise<EtcdStore> {
  const parsed = parseEtcdUrl(url);
  const etcd3 = await import("etcd3");
  const timeoutMs = parsed.timeoutMs ?? DEFAULT_ETCD_TIMEOUT_MS;
  const config: import("etcd3").IOptions = {
    hosts: parsed.hosts.map((h) => `http://${h}`),
    dialTimeout: timeoutMs,
    faultHandling: etcdFaultHandling(etcd3, parsed.hosts.length, timeoutMs),
  };
  if (parsed.username !== undefined && parsed.password !== undefined) {
    config.auth = {
      username: parsed.username,
      password: parsed.password,
      callOptions: () => ({ deadline: Date.now() + timeoutMs }),
    };
  }
  const client = new etcd3.Etcd3(config);
  try {
    return new EtcdStore({
      client,
      key: parsed.key,
      timeoutMs,
      endpoints: parsed.hosts.join(","),
      secrets: parsed.password ? [parsed.password] : [],
      onClose: () => client.close(),
    });
  } catch (err) {
    client.close();
    throw err;
  }
}
