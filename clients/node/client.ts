/**
 * A Node.js client of the onboarding API over native gRPC, built on the
 * TypeScript stubs that `buf generate` writes to gen/ts (protoc-gen-es) and
 * the gRPC transport of @connectrpc/connect-node (HTTP/2).
 *
 *   npx tsx clients/node/client.ts --address 127.0.0.1:8080 \
 *     --username admin --password-stdin --session-id <uuid> < password.txt
 *
 * It logs in, starts the session (a no-op answering `existing` when it
 * already is), creates a checkpoint and reads the funnel, and prints one JSON
 * document with the outcome of each step: {"ok": true, "response": ...} or
 * {"ok": false, "code": "NOT_FOUND", "message": ...}. Responses are printed
 * in the proto JSON mapping with proto field names, as the REST API prints
 * them. The exit code is 0 when every step succeeded, 1 otherwise, and 2 for
 * bad arguments.
 */

import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";

import { type DescMessage, type MessageShape, toJson } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";

import {
  AuthService,
  LoginResponseSchema,
} from "../../gen/ts/onboarding/v1/auth_pb.js";
import {
  FunnelAnalyticsService,
  GetFunnelResponseSchema,
} from "../../gen/ts/onboarding/v1/funnel_pb.js";
import {
  CreateCheckpointResponseSchema,
  SessionRecoveryService,
  StartSessionResponseSchema,
} from "../../gen/ts/onboarding/v1/sessions_pb.js";

type Json = ReturnType<typeof toJson>;
type Step = { ok: true; response: Json } | { ok: false; code: string; message: string };

const USAGE = `usage: client.ts --address HOST:PORT --username NAME
       (--password PASSWORD | --password-stdin) --session-id UUID
       [--client-id N] [--conversation-type TYPE] [--language TAG]
       [--started-at ISO-8601] [--checkpoint-version N] [--start-date DATE]`;

function options() {
  const { values } = parseArgs({
    options: {
      address: { type: "string" },
      username: { type: "string" },
      password: { type: "string" },
      "password-stdin": { type: "boolean", default: false },
      "session-id": { type: "string" },
      "client-id": { type: "string", default: "1" },
      "conversation-type": { type: "string", default: "site_survey" },
      language: { type: "string", default: "en" },
      "checkpoint-version": { type: "string", default: "1" },
      "started-at": { type: "string" },
      "start-date": { type: "string", default: "" },
    },
  });
  const password = values["password-stdin"]
    ? readFileSync(0, "utf8").replace(/\r?\n$/, "")
    : values.password;
  if (!values.address || !values.username || !password || !values["session-id"]) {
    throw new UsageError(USAGE);
  }
  return {
    address: values.address,
    username: values.username,
    password,
    sessionId: values["session-id"],
    clientId: Number(values["client-id"]),
    conversationType: values["conversation-type"] ?? "site_survey",
    language: values.language ?? "en",
    checkpointVersion: Number(values["checkpoint-version"]),
    startedAt: values["started-at"] ? new Date(values["started-at"]) : new Date(),
    startDate: values["start-date"] ?? "",
  };
}

class UsageError extends Error {}

// The proto JSON mapping as the gateway prints it for REST clients.
const JSON_OPTIONS = { useProtoFieldName: true, alwaysEmitImplicit: true };

/** A failed call as a step outcome, with the canonical gRPC code name. */
function failure(err: unknown): Step {
  const error = ConnectError.from(err);
  const code = Code[error.code].replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase();
  return { ok: false, code, message: error.rawMessage };
}

/** The outcome of one call: its response as JSON, or its gRPC error. */
async function step<Desc extends DescMessage>(
  schema: Desc,
  call: () => Promise<MessageShape<Desc>>,
): Promise<Step> {
  try {
    return { ok: true, response: toJson(schema, await call(), JSON_OPTIONS) };
  } catch (err) {
    return failure(err);
  }
}

async function main(): Promise<number> {
  const opts = options();
  const transport = createGrpcTransport({ baseUrl: `http://${opts.address}` });
  const auth = createClient(AuthService, transport);
  const sessions = createClient(SessionRecoveryService, transport);
  const funnel = createClient(FunnelAnalyticsService, transport);

  let access = "";
  const login = await step(LoginResponseSchema, async () => {
    const { username, password } = opts;
    const tokens = await auth.login({ username, password });
    access = tokens.access;
    return tokens;
  });
  if (!login.ok) {
    console.log(JSON.stringify({ login }));
    return 1;
  }
  const headers = { authorization: `Bearer ${access}` };

  const startSession = await step(StartSessionResponseSchema, () =>
    sessions.startSession(
      {
        sessionId: opts.sessionId,
        clientId: opts.clientId,
        conversationType: opts.conversationType,
        language: opts.language,
        startedAt: timestampFromDate(opts.startedAt),
      },
      { headers },
    ),
  );
  const createCheckpoint = await step(CreateCheckpointResponseSchema, () =>
    sessions.createCheckpoint(
      {
        sessionId: opts.sessionId,
        checkpointData: {
          version: opts.checkpointVersion,
          state: "COLLECTING_INFO",
          data: { answers: [], progress: 0 },
        },
      },
      { headers },
    ),
  );
  const getFunnel = await step(GetFunnelResponseSchema, () =>
    funnel.getFunnel(
      { startDate: opts.startDate, clientId: opts.clientId },
      { headers },
    ),
  );

  // Who logged in; the tokens themselves are not printed.
  const user = (login.response as { user?: Json }).user ?? null;
  const report = {
    login: { ok: true, user },
    start_session: startSession,
    create_checkpoint: createCheckpoint,
    get_funnel: getFunnel,
  };
  console.log(JSON.stringify(report));
  return [startSession, createCheckpoint, getFunnel].every((s) => s.ok) ? 0 : 1;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    console.error(err instanceof UsageError ? err.message : String(err));
    process.exitCode = 2;
  },
);
