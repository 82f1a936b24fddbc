"""What a finding row's B-trees and bytes cost SQLite, sized without changing
the store (docs/benchmarks.md, "The writer's statements, B-trees and bytes a
row", issue 12): the rows a `tools/bench-load.sh` run stored are written again,
page view by page view in random order, in commits of 17 batches (the group
commits under load), WAL, synchronous=FULL, into a fresh database laid out as
VARIANT says, through Python's sqlite3 (one statement a row, so per-row costs
show, per-statement ones do not: relative figures only). Prints CPU (process
time) and bytes written (/proc/self/io wchar) a batch; under callgrind, SQLite's
own instructions a batch:

  tools/bench-load.sh && cp target/bench-load/tagwatch.db /tmp/src.db
  python3 tools/bench-sqlite-rows.py /tmp/src.db VARIANT [BATCHES]
  valgrind --tool=callgrind --collect-atstart=no --toggle-collect=sqlite3_step \
    "$(python3 -c 'import sys; print(sys.executable)')" tools/bench-sqlite-rows.py /tmp/src.db VARIANT 1500

VARIANT: upsert (schema 14 as the writer writes it), insert (findings without
ON CONFLICT), slim (page_view, page, received_at, user_agent once a page view,
in page_views), slim_consent (and each consent text once), no_release_idx
(without findings_by_site_release), no_chain (no chain entries), int_keys
(site and release as integer ids in the rows and keys).
"""
import os, random, sqlite3, sys, time
SRC = sys.argv[1]
VARIANT = sys.argv[2]
N = int(sys.argv[3]) if len(sys.argv) > 3 else 6000
OUT = os.path.join(os.environ.get("OUT", "target/bench-sqlite-rows"), f"{VARIANT}.db")
os.makedirs(os.path.dirname(OUT), exist_ok=True)
src = sqlite3.connect(SRC)
fcols = "site, page_view, page, type, vendor, category, evidence_kind, evidence, consent_source, consent, count, at, received_at, user_agent, raw, dedupe, release".split(", ")
ords = [r[0] for r in src.execute("SELECT ordinal FROM page_views ORDER BY ordinal LIMIT ?", (N,))]
find = {}
for r in src.execute(f"SELECT ordinal, {', '.join(fcols)} FROM findings WHERE ordinal <= ? ORDER BY ordinal, dedupe", (ords[-1],)):
    find.setdefault(r[0], []).append(r[1:])
inv = {r[0]: r[1:] for r in src.execute("SELECT ordinal, site, page_view, page, at, received_at, user_agent, raw, release FROM inventories WHERE ordinal <= ?", (ords[-1],))}
vend = {}
for r in src.execute("SELECT i.ordinal, v.vendor, v.requests, v.script_requests, v.transfer_bytes, v.encoded_bytes, v.duration_ms, v.hosts, v.regions, v.cookies FROM inventory_vendors v JOIN inventories i ON i.id = v.inventory WHERE i.ordinal <= ?", (ords[-1],)):
    vend.setdefault(r[0], []).append(r[1:])
hosts = {}
for r in src.execute("SELECT i.ordinal, h.host, h.requests, h.script_requests, h.transfer_bytes, h.encoded_bytes, h.duration_ms FROM inventory_hosts h JOIN inventories i ON i.id = h.inventory WHERE i.ordinal <= ?", (ords[-1],)):
    hosts.setdefault(r[0], []).append(r[1:])
random.seed(7)
pvs = [(o, find[o][0][1]) for o in ords if o in find and o in inv]

int_keys = VARIANT == "int_keys"   # site and release as integer ids in the rows and keys
slim = VARIANT.startswith("slim")          # page_view, page, received_at, user_agent once, in page_views
slim_consent = VARIANT == "slim_consent"   # and consent texts once each (upper bound)
no_release_idx = VARIANT == "no_release_idx"
no_chain = VARIANT == "no_chain"
upsert = VARIANT not in ("insert",)
for f in (OUT, OUT + "-wal", OUT + "-shm"):
    if os.path.exists(f): os.remove(f)
db = sqlite3.connect(OUT, isolation_level=None)
db.execute("PRAGMA journal_mode=WAL"); db.execute("PRAGMA synchronous=FULL"); db.execute("PRAGMA temp_store=MEMORY")
pv_extra = ", page TEXT, received_at TEXT, user_agent TEXT" if slim else ""
K = "BIGINT" if int_keys else "TEXT"
db.executescript(f"""
CREATE TABLE page_views (ordinal INTEGER PRIMARY KEY, site TEXT NOT NULL, page_view TEXT NOT NULL{pv_extra}, UNIQUE (site, page_view));
CREATE TABLE consents (id INTEGER PRIMARY KEY, consent TEXT NOT NULL UNIQUE);
CREATE TABLE findings (id INTEGER PRIMARY KEY, site {K} NOT NULL,
  {'' if slim else 'page_view TEXT NOT NULL, page TEXT NOT NULL,'}
  type TEXT NOT NULL, vendor TEXT NOT NULL, category TEXT, evidence_kind TEXT, evidence TEXT NOT NULL, consent_source TEXT,
  consent {'BIGINT' if slim_consent else 'TEXT'} NOT NULL, count BIGINT NOT NULL, at TEXT NOT NULL,
  {'' if slim else 'received_at TEXT NOT NULL, user_agent TEXT NOT NULL,'}
  raw TEXT NOT NULL, dedupe BLOB, release {K}, ordinal BIGINT NOT NULL DEFAULT 0);
CREATE UNIQUE INDEX findings_by_key ON findings(ordinal, dedupe);
CREATE INDEX findings_by_site_hour ON findings(site, (substr(at, 1, 13)));
{'' if no_release_idx else 'CREATE INDEX findings_by_site_release ON findings(site, release);'}
CREATE TABLE inventories (id INTEGER PRIMARY KEY, site {K} NOT NULL, page_view TEXT NOT NULL, page TEXT NOT NULL, at TEXT NOT NULL,
  received_at TEXT NOT NULL, user_agent TEXT NOT NULL, raw TEXT NOT NULL, release {K}, ordinal BIGINT NOT NULL, UNIQUE (ordinal));
CREATE INDEX inventories_by_site_hour ON inventories(site, (substr(at, 1, 13)));
CREATE INDEX inventories_by_site_release ON inventories(site, release);
CREATE TABLE inventory_vendors (inventory BIGINT NOT NULL, vendor TEXT NOT NULL, requests BIGINT NOT NULL, script_requests BIGINT NOT NULL,
  transfer_bytes BIGINT NOT NULL, encoded_bytes BIGINT NOT NULL, duration_ms BIGINT NOT NULL, hosts TEXT NOT NULL, regions TEXT NOT NULL,
  cookies TEXT NOT NULL, PRIMARY KEY (inventory, vendor)) WITHOUT ROWID;
CREATE TABLE inventory_hosts (inventory BIGINT NOT NULL, host TEXT NOT NULL, requests BIGINT NOT NULL, script_requests BIGINT NOT NULL,
  transfer_bytes BIGINT NOT NULL, encoded_bytes BIGINT NOT NULL, duration_ms BIGINT NOT NULL, PRIMARY KEY (inventory, host)) WITHOUT ROWID;
CREATE TABLE chain (site {K} NOT NULL, seq BIGINT NOT NULL, kind TEXT NOT NULL, row_id BIGINT NOT NULL, at TEXT NOT NULL,
  digest BLOB NOT NULL, hash BLOB NOT NULL, PRIMARY KEY (site, seq)) WITHOUT ROWID;
""")
consent_ids = {}
new_ord = {}
iid_of = {}
def wchar():
    for l in open("/proc/self/io"):
        if l.startswith("wchar:"): return int(l.split()[1])
order = pvs[:]; random.shuffle(order)
GROUP = 17
seq = 0
digest = os.urandom(32)
fcols_slim = [c for c in fcols if c not in ("page_view", "page", "received_at", "user_agent")]
idx = [fcols.index(c) for c in (fcols_slim if slim else fcols)]
ci = fcols.index("consent")
t0 = time.process_time(); w0 = wchar(); wall0 = time.time()
for g in range(0, len(order), GROUP):
    grp = sorted(order[g:g + GROUP], key=lambda p: p[1])
    db.execute("BEGIN IMMEDIATE")
    # New page views take the next ordinals (the store's rowid), in key order.
    for o, pv in grp:
        f0 = find[o][0]
        if slim:
            cur = db.execute("INSERT INTO page_views (site, page_view, page, received_at, user_agent) VALUES (?,?,?,?,?) ON CONFLICT DO NOTHING RETURNING ordinal",
                       (f0[0], pv, f0[2], f0[12], f0[13]))
        else:
            cur = db.execute("INSERT INTO page_views (site, page_view) VALUES (?,?) ON CONFLICT DO NOTHING RETURNING ordinal", (f0[0], pv))
        new_ord[o] = cur.fetchone()[0]
    rows = []
    for o, pv in grp:
        for f in find[o]:
            r = [f[i] for i in idx]
            if slim_consent:
                c = f[ci]
                if c not in consent_ids:
                    db.execute("INSERT INTO consents (consent) VALUES (?) ON CONFLICT DO NOTHING", (c,))
                    consent_ids[c] = db.execute("SELECT id FROM consents WHERE consent = ?", (c,)).fetchone()[0]
                r[(fcols_slim if slim else fcols).index("consent")] = consent_ids[c]
            if int_keys:
                cs = fcols_slim if slim else fcols
                r[cs.index("site")] = 1
                r[cs.index("release")] = 1
            rows.append(r + [new_ord[o]])
    cols = (fcols_slim if slim else fcols) + ["ordinal"]
    sql = f"INSERT INTO findings ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
    if upsert:
        sql += " ON CONFLICT (ordinal, dedupe) DO UPDATE SET count = CASE WHEN excluded.count > findings.count THEN excluded.count ELSE findings.count END, at = CASE WHEN excluded.at < findings.at THEN excluded.at ELSE findings.at END"
    first = db.execute("SELECT coalesce(max(id), 0) FROM findings").fetchone()[0]
    db.executemany(sql, rows)
    for o, pv in grp:
        i = inv[o]
        iv = (1, *i[1:7], 1) if int_keys else i
        cur = db.execute("INSERT INTO inventories (site, page_view, page, at, received_at, user_agent, raw, release, ordinal) VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT (ordinal) DO UPDATE SET at = excluded.at WHERE excluded.at >= inventories.at RETURNING id", (*iv, new_ord[o]))
        iid = cur.fetchone()[0]
        iid_of[o] = iid
        db.executemany("INSERT INTO inventory_vendors VALUES (?,?,?,?,?,?,?,?,?,?)", [(iid, *v) for v in vend.get(o, [])])
        db.executemany("INSERT INTO inventory_hosts VALUES (?,?,?,?,?,?,?)", [(iid, *h) for h in hosts.get(o, [])])
    if not no_chain:
        chain = []
        for k, r in enumerate(rows):
            seq += 1
            chain.append((r[0], seq, "finding", first + k + 1, r[cols.index("at")], digest, digest))
        for o, pv in grp:
            seq += 1
            chain.append((1 if int_keys else inv[o][0], seq, "inventory", iid_of[o], inv[o][3], digest, digest))
        db.executemany("INSERT INTO chain VALUES (?,?,?,?,?,?,?)", chain)
    db.execute("COMMIT")
cpu = time.process_time() - t0; w = wchar() - w0; wall = time.time() - wall0
n = len(order)
size = sum(r[0] for r in db.execute("SELECT sum(payload) FROM dbstat WHERE name = 'findings'"))
print(f"{VARIANT}: {n} batches, CPU {cpu * 1e3 / n:.4f} ms a batch, wall {wall * 1e3 / n:.3f} ms, written {w / 1e3 / n:.1f} KB a batch, findings payload {size / sum(len(find[o]) for o, _ in order):.0f} B a row")
