// The official JavaScript SignalR client (@microsoft/signalr) against a Voxta server.
//
//   node voxta_signalr.js <base url> <negotiate|skip> [idle seconds, default 20]
//
// "negotiate": the client's default (POST /hub/negotiate, then the WebSocket);
// "skip": skipNegotiation with the WebSockets transport (straight to ws://.../hub).
// It authenticates, starts a chat, gets one streamed reply to a message sent with
// invoke() and one to a message sent with send() (fire and forget), stays idle for the
// given time with the client's default timeouts, checks the connection still works, and
// stops. It prints one JSON line with what it saw and exits 0 only when every check held.

"use strict";

const signalR = require("@microsoft/signalr");

const [baseUrl, mode, idleArg] = process.argv.slice(2);
const IDLE_MS = Math.round(Number(idleArg ?? "20") * 1000);
const APEX = "22222222-2222-4222-8222-222222222222";
const WATCHDOG_MS = IDLE_MS + 45000;
const WAIT_MS = 15000;

const report = { mode, idleMs: IDLE_MS, checks: [], events: [] };

function check(condition, what) {
  if (!report.checks.includes(what)) {
    report.checks.push(what);
  }
  if (!condition) {
    throw new Error(`check failed: ${what}`);
  }
}

function finish(code, error) {
  if (error) {
    report.error = String(error && error.stack ? error.stack : error);
  }
  process.stdout.write(JSON.stringify(report) + "\n", () => process.exit(code));
}

if (!baseUrl || (mode !== "negotiate" && mode !== "skip") || !(IDLE_MS >= 0)) {
  process.stderr.write("usage: node voxta_signalr.js <base url> <negotiate|skip> [idle s]\n");
  process.exit(64);
}

const watchdog = setTimeout(() => finish(3, new Error(`watchdog: still running after ${WATCHDOG_MS} ms`)),
  WATCHDOG_MS);

// Every ReceiveMessage argument, in order; waiters are resolved by a predicate.
const received = [];
let waiters = [];

function onMessage(message) {
  received.push(message);
  waiters = waiters.filter((w) => {
    if (w.match(message)) {
      clearTimeout(w.timer);
      w.resolve(message);
      return false;
    }
    return true;
  });
}

function waitFor(match, what) {
  const found = received.find((m) => !m.__seen && match(m));
  if (found) {
    found.__seen = true;
    return Promise.resolve(found);
  }
  return new Promise((resolve, reject) => {
    const waiter = {
      match: (m) => !m.__seen && match(m) && (m.__seen = true),
      resolve,
      timer: setTimeout(() => {
        waiters = waiters.filter((w) => w !== waiter);
        reject(new Error(`timed out waiting for ${what}`));
      }, WAIT_MS),
    };
    waiters.push(waiter);
  });
}

// The client's own WebSocket library (ws), watched: every frame the server sends, with
// its time, and every WebSocket-level ping (there must be none: SignalR pings only).
const wire = { frames: [], wsPings: 0 };
const WebSocketLib = require("ws");

class WatchedWebSocket extends WebSocketLib {
  constructor(...args) {
    super(...args);
    this.on("message", (data) => {
      const text = typeof data === "string" ? data : Buffer.from(data).toString("utf8");
      wire.frames.push({ at: Date.now(), text });
    });
    this.on("ping", () => {
      wire.wsPings += 1;
    });
  }
}

// SignalR records of type 6 (Ping) received between two instants.
function signalRPings(from, to) {
  return wire.frames
    .filter((f) => f.at >= from && f.at <= to)
    .flatMap((f) => f.text.split("\x1e").filter((r) => r).map((r) => ({ at: f.at, record: JSON.parse(r) })))
    .filter((r) => r.record.type === 6)
    .map((r) => r.at);
}

// The longest stretch without any frame from the server, between two instants.
function longestSilence(from, to) {
  let last = from;
  let longest = 0;
  for (const frame of wire.frames) {
    if (frame.at < from || frame.at > to) continue;
    longest = Math.max(longest, frame.at - last);
    last = frame.at;
  }
  return Math.max(longest, to - last);
}

const ofType = (type, extra = () => true) => (m) => m && m.$type === type && extra(m);

// One streamed reply: replyGenerating, replyStart, replyChunk x n, replyEnd (one
// messageId), then chatFlow WaitingForUserInput. Returns the reply text.
async function streamedReply(sessionId, label) {
  const inSession = (m) => m.sessionId === sessionId;
  const generating = await waitFor(ofType("replyGenerating", inSession), `${label}: replyGenerating`);
  const id = generating.messageId;
  check(typeof id === "string" && id.length > 0, `${label}: replyGenerating has a messageId`);
  const sameId = (m) => inSession(m) && m.messageId === id;
  await waitFor(ofType("replyStart", sameId), `${label}: replyStart`);
  const end = await waitFor(ofType("replyEnd", sameId), `${label}: replyEnd`);
  await waitFor(ofType("chatFlow", (m) => inSession(m) && m.state === "WaitingForUserInput"),
    `${label}: chatFlow WaitingForUserInput`);
  const start = received.indexOf(generating);
  const stop = received.indexOf(end);
  const chunks = received.slice(start, stop).filter((m) => m.$type === "replyChunk" && m.messageId === id);
  check(chunks.length >= 1, `${label}: at least one replyChunk`);
  let expected = 0;
  for (const chunk of chunks) {
    check(typeof chunk.text === "string" && chunk.text.length > 0, `${label}: chunk text`);
    check(chunk.startIndex >= expected && chunk.endIndex > chunk.startIndex,
      `${label}: chunk indices move forward`);
    expected = chunk.endIndex;
  }
  const between = received.slice(start, stop + 1).filter((m) => m.$type && m.$type.startsWith("reply"));
  check(between.every((m) => m.messageId === id), `${label}: one messageId from replyGenerating to replyEnd`);
  check(!("invocationId" in end), `${label}: ReceiveMessage payloads carry no invocationId`);
  return chunks.map((c) => c.text).join(" ");
}

async function main() {
  const options = mode === "skip"
    ? { skipNegotiation: true, transport: signalR.HttpTransportType.WebSockets }
    : {};
  options.WebSocket = WatchedWebSocket;
  const connection = new signalR.HubConnectionBuilder()
    .withUrl(`${baseUrl}/hub`, options)
    .configureLogging(signalR.LogLevel.Warning)
    .build();
  // The defaults are what this test is about: no tuning.
  report.serverTimeoutInMilliseconds = connection.serverTimeoutInMilliseconds;
  report.keepAliveIntervalInMilliseconds = connection.keepAliveIntervalInMilliseconds;
  check(connection.serverTimeoutInMilliseconds === 30000, "default serverTimeoutInMilliseconds is 30 s");
  check(connection.keepAliveIntervalInMilliseconds === 15000, "default keepAliveIntervalInMilliseconds is 15 s");

  let closed = null;
  let stopping = false;
  connection.onclose((error) => {
    closed = { error: error ? String(error) : null, whileStopping: stopping };
    report.events.push(`onclose ${closed.error ?? "(no error)"}`);
  });
  connection.on("ReceiveMessage", onMessage);

  await connection.start();
  check(connection.state === signalR.HubConnectionState.Connected, "connected");
  report.connectionId = connection.connectionId ?? null;

  // authenticate: invoke() resolves only when the server's Completion arrives.
  await connection.invoke("SendMessage", {
    $type: "authenticate",
    client: "SignalR.Node.Interop",
    clientVersion: "1.0.0",
    scope: ["role:app"],
    capabilities: { audioInput: "None", audioOutput: "None", visionCapture: "None" },
  });
  const welcome = await waitFor(ofType("welcome"), "welcome");
  check(typeof welcome.user?.id === "string", "welcome has a user");
  report.serverVersion = welcome.voxtaServerVersion;

  await connection.invoke("SendMessage", { $type: "registerApp", clientVersion: "1.0.0", label: "Node interop" });
  await connection.invoke("SendMessage", { $type: "startChat", characterId: APEX });
  const started = await waitFor(ofType("chatStarted"), "chatStarted");
  const sessionId = started.sessionId;
  check(typeof sessionId === "string" && started.chatId, "chatStarted has sessionId and chatId");
  report.greeting = await streamedReply(sessionId, "greeting");

  // A message through invoke(): the Completion resolves the promise.
  await connection.invoke("SendMessage", {
    $type: "send", sessionId, text: "Tell me a joke", doReply: true, doCharacterActionInference: true,
  });
  report.replyInvoke = await streamedReply(sessionId, "invoke reply");

  // The same through send(): no invocationId, so the server sends no Completion.
  await connection.send("SendMessage", {
    $type: "send", sessionId, text: "And another one", doReply: true, doCharacterActionInference: true,
  });
  report.replySend = await streamedReply(sessionId, "send reply");

  // Idle with the default timeouts: the server's keep-alive pings must hold the line.
  const idleStart = Date.now();
  await new Promise((resolve) => setTimeout(resolve, IDLE_MS));
  const idleEnd = Date.now();
  report.idledMs = idleEnd - idleStart;
  report.idlePingsAtMs = signalRPings(idleStart, idleEnd).map((t) => t - idleStart);
  report.idleLongestSilenceMs = longestSilence(idleStart, idleEnd);
  check(closed === null, "no onclose during the idle time");
  check(connection.state === signalR.HubConnectionState.Connected, "still connected after the idle time");

  // Still usable: a list round trip, then stop the chat.
  await connection.invoke("SendMessage", { $type: "loadCharactersList" });
  const list = await waitFor(ofType("charactersListLoaded"), "charactersListLoaded");
  check(Array.isArray(list.characters) && list.characters.length >= 1, "characters listed after idle");
  await connection.invoke("SendMessage", { $type: "stopChat", sessionId });
  await waitFor(ofType("chatClosed", (m) => m.sessionId === sessionId), "chatClosed");

  stopping = true;
  await connection.stop();
  check(connection.state === signalR.HubConnectionState.Disconnected, "disconnected after stop()");
  check(closed !== null && closed.error === null && closed.whileStopping, "onclose once, without error, after stop()");
  report.received = received.length;
  report.webSocketPings = wire.wsPings;
  check(wire.wsPings === 0, "no WebSocket-level ping frames from the server");
}

main().then(
  () => {
    clearTimeout(watchdog);
    finish(0);
  },
  (error) => {
    clearTimeout(watchdog);
    finish(1, error);
  },
);
