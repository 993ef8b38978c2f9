// The official JavaScript client with its MessagePack hub protocol against our HubServer
// (voxta_proto.hub_server), which speaks both JSON and MessagePack.
//
//   node msgpack_hub.js <hub url> <negotiate|skip>
//
// Runs an invoke, a hub error, a stream, a client result (the server calls "Confirm" and
// awaits our answer) and a byte array round trip, then prints one JSON line with what
// it saw and exits 0; any failure prints {error} and exits 1.

"use strict";

const signalR = require("@microsoft/signalr");
const { MessagePackHubProtocol } = require("@microsoft/signalr-protocol-msgpack");

const [hubUrl, mode] = process.argv.slice(2);
const options = mode === "skip"
  ? { skipNegotiation: true, transport: signalR.HttpTransportType.WebSockets }
  : { transport: signalR.HttpTransportType.WebSockets };
const connection = new signalR.HubConnectionBuilder()
  .withUrl(hubUrl, options)
  .withHubProtocol(new MessagePackHubProtocol())
  .configureLogging(signalR.LogLevel.None)
  .build();

connection.on("Confirm", (question) => `yes to ${question}`);

const watchdog = setTimeout(() => {
  process.stdout.write(JSON.stringify({ error: "timed out" }) + "\n");
  process.exit(2);
}, 30000);

function collect(stream) {
  return new Promise((resolve, reject) => {
    const items = [];
    stream.subscribe({
      next: (item) => items.push(item),
      complete: () => resolve(items),
      error: reject,
    });
  });
}

async function main() {
  await connection.start();
  const report = { mode };
  report.sum = await connection.invoke("Add", 2, 3);
  try {
    await connection.invoke("Fail");
    report.hubError = null;
  } catch (err) {
    report.hubError = String(err);
  }
  report.items = await collect(connection.stream("Count", 5));
  report.clientResult = await connection.invoke("Ask", "tea");
  const bytes = await connection.invoke("Echo", new Uint8Array([0, 1, 255]));
  report.bytes = { isBinary: bytes instanceof Uint8Array, values: Array.from(bytes) };
  report.nested = await connection.invoke("Echo", { a: [1, 2.5, null, true], b: "h\u00e9" });
  await connection.stop();
  return report;
}

main().then(
  (report) => {
    clearTimeout(watchdog);
    process.stdout.write(JSON.stringify(report) + "\n");
    process.exit(0);
  },
  (err) => {
    clearTimeout(watchdog);
    process.stdout.write(JSON.stringify({ error: String(err) }) + "\n");
    process.exit(1);
  },
);
