#!/usr/bin/env python3
# What synchronous Distributed inserts cost a group commit on a cluster
# (docs/benchmarks.md#clickhouse-cluster-synchronous-inserts-2026-12-06):
# one INSERT of N rows (8 sites, on both shards) into a Distributed table,
# insert_distributed_sync=0 against =1, alternating, 120 of each, over
# keep-alive HTTP to shard 1 of `tools/clickhouse.sh cluster`.
#   tools/clickhouse.sh cluster && python3 tools/bench-distributed-insert.py [N] [PORT1 PORT2]
# Creates and drops a database of its own (i15bench).
import http.client, time, statistics, sys
PORT=int(sys.argv[2]) if len(sys.argv)>2 else 18123
PORT2=int(sys.argv[3]) if len(sys.argv)>3 else 18126
def q(conn, sql, params=""):
    conn.request("POST", "/?"+params, body=sql.encode())
    r=conn.getresponse(); b=r.read()
    if r.status!=200: raise Exception(b.decode()[:300])
    return b
c=http.client.HTTPConnection("127.0.0.1",PORT)
c2=http.client.HTTPConnection("127.0.0.1",PORT2)
for conn in (c,c2):
    q(conn,"CREATE DATABASE IF NOT EXISTS i15bench")
    q(conn,"CREATE TABLE IF NOT EXISTS i15bench.t_local (site String, page_view String, evidence String, raw String, token UInt64, day Date) ENGINE = ReplacingMergeTree PARTITION BY toMonday(day) ORDER BY (site, page_view, token)")
    q(conn,"CREATE TABLE IF NOT EXISTS i15bench.t AS i15bench.t_local ENGINE = Distributed(tagwatch, i15bench, t_local, sipHash64(site))")
N=int(sys.argv[1]) if len(sys.argv)>1 else 50
def group(tok):
    rows=[]
    for i in range(N):
        rows.append("('tw_site%d','%016x','%s','%s',%d,'2026-12-06')"%(i%8, i, '{"kind":"request","url":"https://x.example/a.js"}', 'r'*600, tok))
    return "INSERT INTO i15bench.t VALUES "+",".join(rows)
times={0:[],1:[]}
tok=0
for rep in range(120):
    for mode in ((0,1) if rep%2==0 else (1,0)):
        tok+=1
        sql=group(tok)
        t=time.perf_counter()
        q(c,sql,"insert_distributed_sync=%d&insert_distributed_timeout=20"%mode)
        times[mode].append((time.perf_counter()-t)*1000)
for m in (0,1):
    v=sorted(times[m]); print("sync=%d rows=%d median %.2f ms  p90 %.2f ms"%(m,N,statistics.median(v),v[int(len(v)*0.9)]))
for port in (PORT, PORT2): q(http.client.HTTPConnection("127.0.0.1", port), "DROP DATABASE i15bench")
