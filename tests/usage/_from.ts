/**
 * An HTTP POST from a chosen loopback source address (127.0.0.2, 127.0.0.3…),
 * so that tests can be several clients by IP. `fetch` cannot pick its source
 * address; node:http's `localAddress` can.
 */
import http from "node:http";

export function postFrom(
  localAddress: string,
  url: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  const u = new URL(url);
  const text = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: u.hostname,
      port: Number(u.port),
      path: u.pathname + u.search,
      method: "POST",
      localAddress,
      headers: { "content-type": "application/json", ...headers },
    }, (res) => {
      let out = "";
      res.setEncoding("utf8");
      res.on("data", (chunk) => out += chunk);
      res.on(
        "end",
        () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: out }),
      );
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(text);
  });
}
