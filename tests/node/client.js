#!/usr/bin/env node
// A Node client built from the repository's proto/ directory alone (@grpc/grpc-js and
// @grpc/proto-loader, no generated code checked in) calls the demo gateway over mutual
// TLS: WhoAmI, Subscribe, Publish and Query, and checks the answers.
//
// Usage: node client.js --target HOST:PORT --pki DIR [--server-name NAME]
//
// DIR holds the dev PKI `safegate pki init` writes (ca.pem, <system>.pem, <system>.key).
// The gateway must have the demo case loaded (`safegate demo`). Prints `ok   <name>` or
// `FAIL <name>: <why>` per check, then `N passed, N failed`; exits 1 if any check failed.
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const PROTO_DIR = path.resolve(__dirname, '..', '..', 'proto');
const DEADLINE_MS = 10_000;
// Synthetic identifiers of the demo case (src/case.rs).
const AMY_NHS = '9990000018';
const DEAN_PNC = '18/0012345R';

function parseArgs(argv) {
  const args = { serverName: 'localhost' };
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, value] = [argv[i], argv[i + 1]];
    if (value === undefined) throw new Error(`${flag} needs a value`);
    if (flag === '--target') args.target = value;
    else if (flag === '--pki') args.pki = value;
    else if (flag === '--server-name') args.serverName = value;
    else throw new Error(`unknown flag ${flag}`);
  }
  if (!args.target || !args.pki) {
    throw new Error('usage: client.js --target HOST:PORT --pki DIR [--server-name NAME]');
  }
  return args;
}

function loadServices() {
  const dir = path.join(PROTO_DIR, 'safegate', 'v1');
  const files = fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.proto'))
    .map((f) => path.join('safegate', 'v1', f));
  // keepCase: the wire names (practitioner_id), not camelCase, which the gateway would
  // receive as unknown fields and so as empty ones.
  const definition = protoLoader.loadSync(files, {
    keepCase: true,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
    includeDirs: [PROTO_DIR],
  });
  return grpc.loadPackageDefinition(definition).safegate.v1;
}

class Gateway {
  constructor(args, services) {
    this.args = args;
    this.services = services;
    this.clients = [];
  }

  credentials(system) {
    const read = (name) => fs.readFileSync(path.join(this.args.pki, name));
    return grpc.credentials.createSsl(
      read('ca.pem'),
      read(`${system}.key`),
      read(`${system}.pem`),
    );
  }

  client(service, system) {
    const Client = this.services[service];
    const client = new Client(this.args.target, this.credentials(system), {
      'grpc.ssl_target_name_override': this.args.serverName,
    });
    this.clients.push(client);
    return client;
  }

  close() {
    for (const client of this.clients) client.close();
  }
}

function deadline() {
  return new Date(Date.now() + DEADLINE_MS);
}

function unary(client, method, request) {
  return new Promise((resolve, reject) => {
    client[method](request, { deadline: deadline() }, (error, response) =>
      error ? reject(error) : resolve(response),
    );
  });
}

function context(practitionerId, role, purpose) {
  return {
    practitioner_id: practitionerId,
    role,
    purpose: purpose || 'PURPOSE_UNSPECIFIED',
  };
}

const byNhs = (value) => ({ identifier: { scheme: 'IDENTIFIER_SCHEME_NHS_NUMBER', value } });
const byPnc = (value) => ({ identifier: { scheme: 'IDENTIFIER_SCHEME_PNC_ID', value } });

function expect(condition, why) {
  if (!condition) throw new Error(why);
}

// Notices on one open Subscribe stream, awaited by predicate.
class NoticeStream {
  constructor(call) {
    this.call = call;
    this.notices = [];
    this.waiters = [];
    this.failure = null;
    call.on('data', (response) => {
      this.notices.push(response.notice);
      this.wake();
    });
    call.on('error', (error) => {
      // The client's own cancel at the end is not a failure.
      if (error.code !== grpc.status.CANCELLED) this.failure = error;
      this.wake();
    });
  }

  wake() {
    for (const waiter of this.waiters.splice(0)) waiter();
  }

  async waitFor(predicate, what) {
    const until = Date.now() + DEADLINE_MS;
    for (;;) {
      const found = this.notices.find(predicate);
      if (found) return found;
      if (this.failure) throw new Error(`Subscribe failed: ${this.failure.message}`);
      const left = until - Date.now();
      if (left <= 0) throw new Error(`no ${what} within ${DEADLINE_MS} ms`);
      await new Promise((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, left);
      });
    }
  }
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const gateway = new Gateway(args, loadServices());
  const results = [];
  const check = async (name, body) => {
    try {
      await body();
      results.push(true);
      console.log(`ok   ${name}`);
    } catch (error) {
      results.push(false);
      console.log(`FAIL ${name}: ${error.message}`);
    }
  };

  await check('WhoAmI names the system the client certificate identifies', async () => {
    const identity = gateway.client('IdentityService', 'police-iom');
    const answer = await unary(identity, 'WhoAmI', {
      context: context('IOM-0001', 'ROLE_IOM_OFFICER'),
    });
    expect(answer.system_id === 'police-iom', `system_id is "${answer.system_id}"`);
    expect(answer.agency === 'AGENCY_POLICE', `agency is ${answer.agency}`);
  });

  await check('a role the system may not assert is PERMISSION_DENIED', async () => {
    const identity = gateway.client('IdentityService', 'nursery');
    const refused = await unary(identity, 'WhoAmI', {
      context: context('DSL-0001', 'ROLE_IOM_OFFICER'),
    }).then(
      () => null,
      (error) => error,
    );
    expect(refused !== null, 'the nursery was answered as an IOM officer');
    expect(refused.code === grpc.status.PERMISSION_DENIED, `code ${refused.code}`);
  });

  // The health visitor subscribes first; the police then publish an incident in the
  // family, which must arrive on the open stream (Operation Encompass).
  const notifications = gateway.client('NotificationService', 'health-visiting');
  const subscription = notifications.Subscribe(
    { context: context('HV-0001', 'ROLE_HEALTH_VISITOR'), after_cursor: 0 },
    {},
  );
  const stream = new NoticeStream(subscription);

  await check('Subscribe delivers the notices already waiting', async () => {
    const first = await stream.waitFor(() => true, 'notice');
    expect(first.rule !== '', 'a notice without a rule');
    expect(first.disclosure_entry_id !== '', 'a delivery not in the disclosure log');
  });

  let published = null;
  await check('Publish stores a police event and returns its receipt', async () => {
    const records = gateway.client('RecordsService', 'police-iom');
    const answer = await unary(records, 'Publish', {
      context: context('IOM-0001', 'ROLE_IOM_OFFICER'),
      client_request_id: `node-client-${process.pid}-${Date.now()}`,
      fact: {
        police_event: {
          type: 'POLICE_EVENT_TYPE_DOMESTIC_ABUSE_INCIDENT',
          occurred_date: new Date().toISOString().slice(0, 10),
          persons: [byPnc(DEAN_PNC), byNhs(AMY_NHS)],
          summary: 'Incident attended; synthetic record written by the Node client check',
        },
      },
    });
    published = answer.receipt;
    expect(published && published.record_id !== '', 'no record id in the receipt');
    expect(String(published.version) === '1', `version ${published.version}`);
    expect(published.person_ids.length === 2, `${published.person_ids.length} person ids`);
  });

  await check('the published incident reaches the open Subscribe stream', async () => {
    expect(published !== null, 'nothing was published');
    const notice = await stream.waitFor(
      (n) =>
        n.rule === 'police_event' &&
        n.facts.some((view) => view.record_id === published.record_id),
      'police_event notice for the published record',
    );
    expect(notice.recipient_role === 'ROLE_HEALTH_VISITOR', `role ${notice.recipient_role}`);
  });
  subscription.cancel();

  await check('Query answers the health visitor about the child', async () => {
    const query = gateway.client('QueryService', 'health-visiting');
    const answer = await unary(query, 'Query', {
      context: context('HV-0001', 'ROLE_HEALTH_VISITOR', 'PURPOSE_CHILD_SAFEGUARDING'),
      subject: byNhs(AMY_NHS),
    });
    expect(answer.subject && answer.subject.person_id !== '', 'no subject in the answer');
    expect(answer.disclosure_entry_id !== '', 'the answer is not in the disclosure log');
    expect(answer.lawful_basis !== '', 'no lawful basis');
    expect(answer.linked.length > 0, 'no linked persons');
  });

  gateway.close();
  const passed = results.filter(Boolean).length;
  const failed = results.length - passed;
  console.log(`${passed} passed, ${failed} failed`);
  process.exitCode = failed === 0 ? 0 : 1;
}

main().catch((error) => {
  console.error(`node-client: ${error.message}`);
  process.exitCode = 2;
});
