import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { CREDENTIALS_KIND } from '../../lib/services/authz-credentials.js';
import { documentJson, queryTaskJson } from '../../server/tasks/query-json.js';

const doc = (link: string, extra: Record<string, unknown> = {}) => ({ documentSelfLink: link, documentKind: 'k', name: 'n', ...extra });

test('the spliced text parses to the task itself, twice in a row (kept entries)', () => {
  const a = doc('/e/a');
  const b = doc('/e/b', { tags: ['x', '\u0000documents\u0000'] });
  const task = {
    querySpec: { query: { term: { propertyName: 'name', matchValue: '\u0000documents\u0000' } } },
    results: { documentLinks: ['/e/a', '/e/b?documentVersion=1'], documents: { '/e/a': a, '/e/b?documentVersion=1': b }, documentCount: 2 },
    documentSelfLink: '/core/query-tasks/t',
  };
  for (let i = 0; i < 2; i++) assert.equal(JSON.parse(queryTaskJson(task).toString('utf8')), task);
  const noDocs = { results: { documentLinks: [], documentCount: 0 } };
  assert.equal(JSON.parse(queryTaskJson(noDocs).toString('utf8')), noDocs);
});

test('credentials lose their password hash, in documents and selectedDocuments', () => {
  const cred = {
    documentSelfLink: '/core/auth/credentials/c',
    documentKind: CREDENTIALS_KIND,
    userEmail: 'u',
    privateKeyHash: 'scrypt$...',
  };
  assert.not.ok(documentJson(cred).includes('privateKeyHash'));
  const text = queryTaskJson({ results: { documents: { [cred.documentSelfLink]: cred }, selectedDocuments: { x: cred } } }).toString(
    'utf8',
  );
  assert.not.ok(text.includes('privateKeyHash'));
  assert.ok(text.includes('"userEmail":"u"'));
});

test.run();
