/**
 * The example program: talks to a group running the example's services through krypton/client.
 * It creates notes, follows one with a watch while it edits it, asks the search service, reads
 * the tag counter the notes' effects keep, and checks each answer, exiting 1 on the first that
 * is wrong. Usage: node dist/main.js http://127.0.0.1:8000 [more hosts...]
 */

import { isNotFound, KryptonClient, query } from 'krypton/client';
import { NOTE_KIND, type Note, type TagCount } from './services.js';

function check(ok: boolean, what: string): void {
  if (!ok) {
    process.stderr.write(`example: wrong: ${what}\n`);
    process.exit(1);
  }
  process.stdout.write(`ok: ${what}\n`);
}

async function main(hosts: string[]): Promise<void> {
  const client = await KryptonClient.connect({ hosts });
  try {
    const notes = client.factory<Note>('/app/notes');
    // The counter is the group's; this run adds to whatever earlier runs counted.
    const countedBefore = (await client.document<TagCount>('/app/tag-counts/all').find())?.tags ?? 0;
    const run = Date.now().toString(36);
    const a = await notes.create({ documentSelfLink: `groceries-${run}`, title: 'groceries', tags: ['home'] });
    const b = await notes.create({ documentSelfLink: `talk-${run}`, title: 'talk', tags: ['work'] });
    check(a.documentVersion === 0 && b.title === 'talk', 'two notes created at their owners');

    const bad = await notes.create({ title: '' }).catch((e: unknown) => e);
    check(bad instanceof Error && 'status' in bad && bad.status === 400, "a bad body is refused with 400 and Xenon's error body");

    // Follow one note while it is edited: the watch sees every version, in order.
    const watch = notes.doc(`groceries-${run}`).watch();
    const seen: number[] = [];
    const following = (async () => {
      for await (const ev of watch) {
        if (ev.type !== 'update') continue;
        seen.push(ev.state.documentVersion);
        if (ev.state.documentVersion === 3) break;
      }
    })();
    await notes.doc(`groceries-${run}`).patch({ tags: ['shopping'] });
    await notes.doc(`groceries-${run}`).patch({ body: 'milk, bread' });
    await notes.doc(`groceries-${run}`).patch({ tags: ['weekend', 'shopping'] });
    await following;
    check(seen.join(',') === '0,1,2,3', `the watch saw versions ${seen.join(',')}`);

    const found = await client.query<Note>(query().kind(NOTE_KIND).eq('tags.item', 'shopping').expand());
    check(found.documentLinks.includes(a.documentSelfLink), 'a query task finds the note by tag');

    const search = await client.request<{ titles: string[] }>('GET', '/app/notes-search?tag=work');
    check(search.titles.includes('talk'), 'the stateless search service answers');

    // Two tags were added by PATCHes; each PATCH's effect counted them once, on the owner.
    const counter = client.document<TagCount>('/app/tag-counts/all');
    const deadline = Date.now() + 10_000;
    let counted = (await counter.find())?.tags ?? 0;
    while (counted < countedBefore + 2 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      counted = (await counter.find())?.tags ?? 0;
    }
    check(counted === countedBefore + 2, `the tag counter (a singleton) counted ${counted - countedBefore} added tags`);

    await notes.doc(`talk-${run}`).delete();
    check(isNotFound(await notes.get(`talk-${run}`).catch((e: unknown) => e)), 'a deleted note is gone');
    process.stdout.write('example: all checks passed\n');
  } finally {
    await client.close();
  }
}

const hosts = process.argv.slice(2);
if (hosts.length === 0) {
  process.stderr.write('usage: node dist/main.js HOST_URI [HOST_URI...]\n');
  process.exit(2);
}
main(hosts).catch((e: unknown) => {
  process.stderr.write(`example: ${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
