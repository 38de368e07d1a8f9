/**
 * Seed 000 from start to end with three real processes on the tutorial's ports and its JSON
 * bodies verbatim: quorum 3, an example and two example tasks, the INCLUDE_ALL_VERSIONS query
 * showing versions 0-3 of each task, the examples gone, one host stopped with
 * DELETE /core/management, the next task POST, sent at once, waiting until an UpdateQuorumRequest
 * sent right after it relaxes the quorum, and the restarted host listing all three tasks as
 * FINISHED.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Client } from '../support/http.js';
import { tempDir } from '../support/hosts.js';
import { startHostProcess, type HostProcess } from '../support/process.js';
import { waitFor } from '../support/wait.js';

const PEERS = '--peerNodes=http://127.0.0.1:8000,http://127.0.0.1:8001,http://127.0.0.1:8002';
const IDS = ['hostAtPort8000', 'hostAtPort8001', 'hostAtPort8002'];
const JSON_TYPE = { 'Content-Type': 'application/json' };

const example1Body = `{
  "name": "example-1",
  "counter": 1
}
`;
const taskBody = `{
  "taskLifetime": 300
}
`;
const queryBody = `{
    "taskInfo": {
        "isDirect": true
    },
    "querySpec": {
        "options": [
            "INCLUDE_ALL_VERSIONS"
        ],
        "query": {
            "term": {
                "matchValue": "com:vmware:xenon:services:common:ExampleTaskService:ExampleTaskServiceState",
                "propertyName": "documentKind"
            }
        }
    }
}
`;
const updateQuorumBody = `{
    "isGroupUpdate" : true,
    "membershipQuorum" : 2,
    "kind" : "com:vmware:xenon:services:common:NodeGroupService:UpdateQuorumRequest"
}
`;

interface Group {
  nodes: Record<string, { status: string; membershipQuorum: number }>;
}
interface Task {
  taskLifetime: number;
  subStage: string;
  taskInfo: { stage: string; isDirect: boolean };
  documentVersion: number;
  documentSelfLink: string;
  documentOwner: string;
  exampleQueryTask?: { taskInfo: { stage: string } };
}
interface Links {
  documentLinks: string[];
  documentCount: number;
}

async function everyoneAvailable(clients: Client[], ids: string[]): Promise<boolean> {
  for (const c of clients) {
    const g = await c.get<Group>('/core/node-groups/default');
    for (const id of ids) if (g.body?.nodes?.[id]?.status !== 'AVAILABLE') return false;
  }
  return true;
}

test('seed 000: tasks run on their owners, wait for quorum, and are all FINISHED everywhere', async () => {
  const dir = await tempDir();
  const procs: HostProcess[] = [];
  const clients: Client[] = [];
  const start = async (port: number, quorum: number) => {
    // java -Dxenon.NodeState.membershipQuorum=N ... ExampleServiceHost --sandbox --port --peerNodes --id
    procs.push(
      await startHostProcess([`--membershipQuorum=${quorum}`, `--sandbox=${dir.path}`, `--port=${port}`, PEERS, `--id=hostAtPort${port}`]),
    );
    const c = new Client(`http://localhost:${port}`);
    clients.push(c);
    return c;
  };
  try {
    // 1. Start a node group with quorum 3.
    const c0 = await start(8000, 3);
    const c1 = await start(8001, 3);
    let c2 = await start(8002, 3);
    await waitFor('group formed', () => everyoneAvailable([c0, c1, c2], IDS), 20_000);
    await waitFor('group available', async () => (await c0.get('/core/node-groups/default/available')).status === 200);
    const g = await c0.get<Group>('/core/node-groups/default');
    for (const id of IDS) assert.is(g.body.nodes[id]!.membershipQuorum, 3);

    // 2. An example, then two example tasks.
    assert.is((await c0.send('POST', '/core/examples', example1Body, JSON_TYPE)).status, 200);
    const tasks: Task[] = [];
    for (let i = 0; i < 2; i++) {
      const r = await c0.send<Task>('POST', '/core/example-tasks', taskBody, JSON_TYPE);
      assert.ok(r.status === 200 || r.status === 202, `task POST answered ${r.status}`);
      assert.is(r.body.taskLifetime, 300);
      assert.is(r.body.subStage, 'QUERY_EXAMPLES');
      assert.equal(r.body.taskInfo, { stage: 'STARTED', isDirect: false });
      assert.is(r.body.documentVersion, 0);
      assert.ok(IDS.includes(r.body.documentOwner));
      tasks.push(r.body);
    }

    // 3. The tasks go through their stages: versions 0-3 of each.
    for (const t of tasks) {
      await waitFor(
        `${t.documentSelfLink} FINISHED`,
        async () => (await c0.get<Task>(t.documentSelfLink)).body.taskInfo?.stage === 'FINISHED',
        20_000,
      );
    }
    const q = await c0.send<{ taskInfo: { stage: string }; results: Links }>('POST', '/core/query-tasks', queryBody, JSON_TYPE);
    assert.is(q.status, 200);
    assert.is(q.body.taskInfo.stage, 'FINISHED');
    const expected = tasks.flatMap((t) => [0, 1, 2, 3].map((v) => `${t.documentSelfLink}?documentVersion=${v}`));
    assert.equal([...q.body.results.documentLinks].sort(), expected.sort());
    const examples = await c0.get<Links>('/core/examples/');
    assert.equal(examples.body.documentLinks, []);
    assert.is(examples.body.documentCount, 0);

    // 4-7 back to back, as the seed types them: no wait between the steps. 4. Stop one node: it
    // tells its peers before it answers, so 8000 already counts two hosts for quorum 3 when...
    assert.is((await c2.delete('/core/management')).status, 202);

    // 5. ...a new task is posted to it at once: it waits.
    let answered = false;
    const pending = c0.send<Task>('POST', '/core/example-tasks', taskBody, JSON_TYPE).then((r) => {
      answered = true;
      return r;
    });

    // "The terminal shows no response": the POST is held on 8000 (not failed, not answered).
    await waitFor(
      'the task POST held on 8000',
      async () => answered || (await c0.get<{ parkedRequests: number }>('/core/management')).body.parkedRequests >= 1,
    );
    assert.is(answered, false, 'the task POST must wait while the quorum cannot be met');

    // 6. Relax the quorum; 7. the waiting POST completes by itself.
    assert.is((await c0.send('PATCH', '/core/node-groups/default', updateQuorumBody, { 'Content-type': 'application/json' })).status, 200);
    assert.is(answered, false, 'the task POST waited for the quorum');
    const third = await pending;
    assert.ok(third.status === 200 || third.status === 202, `waiting task POST answered ${third.status}: ${JSON.stringify(third.body)}`);
    tasks.push(third.body);
    for (const c of [c0, c1]) {
      const gq = await c.get<Group>('/core/node-groups/default');
      assert.is(gq.body.nodes[c === c0 ? 'hostAtPort8000' : 'hostAtPort8001']!.membershipQuorum, 2);
    }
    const listed = await c0.get<Links>('/core/example-tasks');
    assert.equal([...listed.body.documentLinks].sort(), tasks.map((t) => t.documentSelfLink).sort());

    // 8. Restart the stopped node with quorum 2; 9. it lists all three tasks, all FINISHED.
    assert.is(await procs[2]!.exited, 0, 'the stopped host exited cleanly');
    await c2.close();
    clients.splice(clients.indexOf(c2), 1);
    c2 = await start(8002, 2);
    await waitFor('8002 AVAILABLE again', () => everyoneAvailable([c0, c1, c2], IDS), 20_000);
    await waitFor('8002 lists all three tasks', async () => (await c2.get<Links>('/core/example-tasks')).body.documentCount === 3, 20_000);
    for (const t of tasks) {
      const done = await waitFor(
        `${t.documentSelfLink} FINISHED on 8002`,
        async () => {
          const r = await c2.get<Task>(t.documentSelfLink);
          return r.body.taskInfo?.stage === 'FINISHED' ? r.body : undefined;
        },
        20_000,
      );
      assert.is(done.taskLifetime, 300);
      assert.is(done.exampleQueryTask?.taskInfo.stage, 'FINISHED');
      assert.is(done.documentVersion >= 3, true);
    }
  } finally {
    for (const c of clients) await c.close();
    for (const p of procs) await p.kill('SIGKILL');
    await dir.remove();
  }
});

test.run();
