import { durationMs, urlOptions, validPort } from "../../config.js";
import { ConfigError, quote } from "../../errors.js";

export interface EtcdUrl {
  /** Client endpoints as `host:port` (plain HTTP/2). At least one. */
  hosts: string[];
  key?: string;
  timeoutMs?: number;
  /** etcd user (role-based auth), if the cluster has auth enabled. */
  username?: string;
  password?: string;
}

/** Reads `etcd://[user:password@]host:port[,host:port…][?key=…&timeout=…]`. */
export function parseEtcdUrl(url: string): EtcdUrl {
  const malformed = (why: string) => new ConfigError("store", `malformed etcd URL: ${why}`);
  const m = /^etcd:\/\/([^/?#]*)\/?(?:\?([^#]*))?(?:#.*)?$/i.exec(url);
  if (!m) throw malformed("use etcd://host:port[,host:port…][?key=…&timeout=…]");
  const known = urlOptions("etcd", new URLSearchParams(m[2] ?? ""), ["key", "timeout"]);
  let authority = m[1] ?? "";
  const parsed: EtcdUrl = { hosts: [] };
  const at = authority.lastIndexOf("@");
  if (at >= 0) {
    const userinfo = authority.slice(0, at);
    authority = authority.slice(at + 1);
    const colon = userinfo.indexOf(":");
    try {
      parsed.username = decodeURIComponent(colon < 0 ? userinfo : userinfo.slice(0, colon));
      parsed.password = colon < 0 ? "" : decodeURIComponent(userinfo.slice(colon + 1));
    } catch {
      throw malformed("the user or password is not valid percent-encoding");
    }
  }
  if (authority === "") throw malformed("no host: use etcd://host:port");
  parsed.hosts = authority.split(",");
  if (parsed.hosts.includes("")) throw malformed("an empty host in the list");
  for (const host of parsed.hosts) {
    const port = /^(?:[^\s:/?#@,[\]]+|\[[0-9a-f:.]+\]):(\d{1,5})$/i.exec(host)?.[1];
    if (port === undefined || !validPort(port)) {
      throw new ConfigError(
        "hosts",
        `invalid etcd host ${quote(host, 60)}: use host:port, with a port from 1 to 65535`,
      );
    }
  }
  const key = known.get("key");
  if (key !== undefined) parsed.key = key;
  const timeout = known.get("timeout");
  if (timeout !== undefined) parsed.timeoutMs = durationMs("timeout", timeout);
  return parsed;
}
