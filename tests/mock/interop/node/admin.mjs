// The mock's admin API from Node: what a TypeScript test suite does with it.
//
//   node admin.mjs <base url> <admin token> <client token>
//
// It registers an expectation with fetch (POST /_mock/expectations), connects with
// @microsoft/signalr, authenticates, starts a chat, sends the expected message, gets the
// expectation's reply, then reads the journal (GET /_mock/journal) and the expectation's
// match count (GET /_mock/expectations), and resets the mock. It prints one JSON line
// with what it saw and exits 0 only when every check held.

import signalR from "@microsoft/signalr";

const [baseUrl, adminToken, clientToken] = process.argv.slice(2);
const APEX = "22222222-2222-4222-8222-222222222222";
const report = { checks: [] };

function check(condition, what) {
  report.checks.push(what);
  if (!condition) throw new Error(`check failed: ${what}`);
}

async function admin(method, path, body) {
  const response = await fetch(baseUrl + path, {
    method,
    headers: { Authorization: `Bearer ${adminToken}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : null };
}

function waitFor(connection, type) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${type}`)), 15000);
    const handler = (message) => {
      if (message.$type === type) {
        clearTimeout(timer);
        connection.off("ReceiveMessage", handler);
        resolve(message);
      }
    };
    connection.on("ReceiveMessage", handler);
  });
}

async function main() {
  const refused = await fetch(baseUrl + "/_mock/state");
  check(refused.status === 401, "the admin API refuses a request without the token");

  const added = await admin("POST", "/_mock/expectations", {
    match: { type: "send", fields: { text: { regex: "^open the pod bay" } } },
    reply: [{ $type: "chatSessionError", sessionId: "any", message: "I'm afraid I can't",
              code: "hal" }],
  });
  check(added.status === 201 && added.body.id === "exp-1", "POST /_mock/expectations gives an id");

  const connection = new signalR.HubConnectionBuilder()
    .withUrl(`${baseUrl}/hub`, { accessTokenFactory: () => clientToken })
    .configureLogging(signalR.LogLevel.Warning)
    .build();
  await connection.start();
  const welcome = waitFor(connection, "welcome");
  await connection.invoke("SendMessage", {
    $type: "authenticate", client: "Admin.Node.Interop", clientVersion: "1.0.0",
    scope: ["role:app"],
    capabilities: { audioInput: "None", audioOutput: "None", visionCapture: "None" },
  });
  await welcome;
  const started = waitFor(connection, "chatStarted");
  await connection.invoke("SendMessage", { $type: "startChat", characterId: APEX });
  const { sessionId } = await started;

  const answer = waitFor(connection, "chatSessionError");
  await connection.invoke("SendMessage", { $type: "send", sessionId, text: "open the pod bay doors" });
  const error = await answer;
  check(error.message === "I'm afraid I can't", "the expectation's reply arrived");

  const journal = await admin("GET", `/_mock/journal?type=send&session=${sessionId}`);
  check(journal.status === 200, "GET /_mock/journal");
  report.journal = journal.body.entries.map((e) => [e.direction, e.type, e.message.text]);
  check(journal.body.entries.length === 1 && journal.body.entries[0].message.text ===
        "open the pod bay doors", "the journal has the message the client sent");
  const sent = await admin("GET", "/_mock/journal?type=chatSessionError&direction=sent");
  check(sent.body.entries.length === 1, "the journal has the reply the mock sent");

  const listed = await admin("GET", "/_mock/expectations");
  check(listed.body.expectations[0].matched === 1, "the expectation matched once");

  const state = await admin("GET", "/_mock/state");
  check(state.body.connections.length === 1 &&
        state.body.connections[0].sessionIds[0] === sessionId, "GET /_mock/state");

  await connection.stop();
  const reset = await admin("POST", "/_mock/reset");
  check(reset.status === 204, "POST /_mock/reset");
  const empty = await admin("GET", "/_mock/expectations");
  check(empty.body.expectations.length === 0, "reset forgot the expectations");
}

const watchdog = setTimeout(() => { report.error = "watchdog"; finish(3); }, 45000);

function finish(code) {
  clearTimeout(watchdog);
  process.stdout.write(JSON.stringify(report) + "\n", () => process.exit(code));
}

main().then(() => finish(0), (error) => { report.error = String(error?.stack ?? error); finish(1); });
