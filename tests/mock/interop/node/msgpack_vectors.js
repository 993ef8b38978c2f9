// What @microsoft/signalr-protocol-msgpack makes of our MessagePack golden vectors.
//
//   node msgpack_vectors.js <hub_messages.jsonl>
//
// For every row it encodes the row's message (its JSON hub form) with the official
// MessagePackHubProtocol, and parses the row's bytes (our encoding) with it. It prints one
// JSON line per row: {name, encoded: hex or null, decoded: [messages] or null, error}.
// The Python side (tests/mock/test_interop_msgpack.py) compares.

"use strict";

const fs = require("fs");
const { NullLogger } = require("@microsoft/signalr");
const { MessagePackHubProtocol } = require("@microsoft/signalr-protocol-msgpack");

const protocol = new MessagePackHubProtocol();

function hexToArrayBuffer(text) {
  const bytes = Buffer.from(text.replace(/[|\s]/g, ""), "hex");
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
}

const rows = fs.readFileSync(process.argv[2], "utf8").split("\n").filter((l) => l.trim());
for (const line of rows) {
  const row = JSON.parse(line);
  const out = { name: row.name, encoded: null, decoded: null, error: null };
  try {
    out.encoded = Buffer.from(protocol.writeMessage(row.message)).toString("hex");
    out.decoded = protocol.parseMessages(hexToArrayBuffer(row.hex), NullLogger.instance);
  } catch (err) {
    out.error = String(err);
  }
  process.stdout.write(JSON.stringify(out) + "\n");
}
