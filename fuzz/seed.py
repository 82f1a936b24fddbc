#!/usr/bin/env python3
"""Seeds fuzz/corpus/<target>/ from tests/fixtures (run by `./build.sh fuzz`).

Seed files are named seed-*, so re-running only refreshes them; what libFuzzer
adds to a corpus directory stays (and is git-ignored)."""
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIX = os.path.join(ROOT, "tests", "fixtures")
OUT = os.path.join(ROOT, "fuzz", "corpus")


def lines(*path):
    with open(os.path.join(FIX, *path), encoding="utf-8") as f:
        return [l.rstrip("\n") for l in f if l.strip() and not l.startswith("#")]


def write(target, seeds):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    for old in os.listdir(d):
        if old.startswith("seed-"):
            os.remove(os.path.join(d, old))
    seen = set()
    for s in seeds:
        b = s.encode("utf-8") if isinstance(s, str) else s
        if b in seen:
            continue
        seen.add(b)
        with open(os.path.join(d, "seed-%04d" % len(seen)), "wb") as f:
            f.write(b)
    return len(seen)


urls = lines("corpus", "page-load-urls.txt")
classify = [l.split("\t")[0] for l in lines("classify", "corpus.tsv")]
classify_urls = [c for c in classify if "://" in c]
cookie_names = [c for c in classify if "://" not in c]
tc_strings = lines("tcf", "strings.txt") + lines("tcf", "malformed.txt")
cmp_headers = [json.loads(l)["header"] for l in lines("cmp", "cases.jsonl")]
golden = json.load(open(os.path.join(FIX, "golden", "report-batch.json"), encoding="utf-8"))
policy_doc = json.load(open(os.path.join(FIX, "har", "policy-eu-support.json"), encoding="utf-8"))

# The JSON policy fixture (`Policy::from_json`), whole and one key at a time.
policy_text = json.dumps(policy_doc)
policies = [policy_text] + [json.dumps({k: v}) for k, v in policy_doc.items()]

# Engine scripts: the golden report's page and evidence replayed, then the
# classify corpus and the CMP cases as requests, cookies and consent.
g_url = golden[0]["url"]
g_lines = [g_url, "G1", "P" + policy_text]
for env in golden:
    ev = env.get("body", {}).get("evidence") or {}
    at = env.get("body", {}).get("at", 0)
    if ev.get("kind") == "request":
        g_lines.append("Rhttps://%s%s\t%s\t%s\t%s\t1200" % (ev["host"], ev["path"], ev["initiator"], at, ev["frame"]))
    elif ev.get("kind") == "cookie":
        g_lines.append("C%s=1\t%s" % (ev["cookie"], at))
g_lines += ["B4880", "K1100\t5000", "T9000", "K1000\t9100", "R" + classify_urls[0] + "\tscript\t20000", "B30000"]
engine = ["\n".join(g_lines)]
for i, u in enumerate(classify_urls):
    engine.append("https://shop.example/\nR%s\tscript\t%d\ttop\t500\nB%d" % (u, 100 + i, 200 + i))
for i, h in enumerate(cmp_headers):
    engine.append("https://shop.example/support/x\nC%s\t10\nR%s\tscript\t20\nM%s\t30\nC%s\t40\nT50000\nB60000"
                  % (h, classify_urls[i % len(classify_urls)], h, h))
engine.append("https://shop.example/\nK1111\t0\nE_ga\t1e12\t1.7e9\t10\nCintercom-id-abc=1; _ga=1\t20\nK1000\t30\nT99999\nB99999")

gpp_strings = [json.loads(l)["gpp"] for l in lines("gpp", "cases.jsonl")] + lines("gpp", "malformed.txt")
consent_mode = [
    "\ndefault\tad_storage=denied analytics_storage=denied ad_user_data=denied ad_personalization=denied wait_for_update=500\nupdate\tad_storage=granted analytics_storage=granted ad_user_data=granted ad_personalization=granted",
    "US-CA\ndefault\tad_storage=denied region=US-CA\ndefault\tad_storage=granted region=US\nupdate\tanalytics_storage=granted\nG111\nG100",
    "\nupdate\tfunctionality_storage=granted\ndefault\tfunctionality_storage=denied\n13l3l3l3l1\n11p1p1p1p5",
]

# The collector's targets: a selector byte (encoding in the low 3 bits,
# bit 3: compress the rest with it first), then the body. Every encoding,
# compressed and as is; the golden batch as the monitor sends it, and
# forged ones with an e-mail canary in every free field.
sent = open(os.path.join(FIX, "golden", "report-batch.sent.json"), "rb").read().strip()
EMAIL = "jane.doe@example.com"
forged = json.loads(sent)
for env in forged:
    env["url"] = "https://shop.example/account/%s/x" % EMAIL
    env["user_agent"] = "UA " + EMAIL
    body = env.get("body", {})
    body["note"] = EMAIL
    ev = body.get("evidence")
    if isinstance(ev, dict):
        ev["purpose"] = EMAIL
        if ev.get("kind") == "cookie":
            ev["cookie"] = "intercom-id-" + EMAIL
    for v in body.get("vendors") or []:
        v["cookies"] = ["intercom-id-" + EMAIL, EMAIL]
forged = json.dumps(forged, separators=(",", ":")).encode()
batches = [sent, forged, json.dumps(json.loads(sent)[:1]).encode(), b"[]", b"{}"]
ingest = [bytes([sel]) + b for b in batches for sel in range(16)]
legacy = json.dumps({"csp-report": {
    "document-uri": "https://shop.example/checkout/%s?order=12345#pay" % EMAIL,
    "blocked-uri": "https://www.googletagmanager.com/gtag/js?id=G-SECRET",
    "violated-directive": "script-src-elem", "effective-directive": "script-src-elem",
    "disposition": "report", "original-policy": "script-src 'self'; report-uri /csp/x",
    "script-sample": EMAIL}}).encode()
reporting = json.dumps([
    {"type": "csp-violation", "age": 2000, "url": "https://shop.example/x", "user_agent": "UA",
     "body": {"documentURL": "https://shop.example/x/" + EMAIL, "blockedURL": "https://cdn.unknown.example/a.js",
              "effectiveDirective": "script-src-elem", "disposition": "enforce", "sample": EMAIL}},
    {"type": "csp-violation", "age": 0, "url": "https://shop.example/x", "user_agent": "UA",
     "body": {"documentURL": "https://shop.example/x", "blockedURL": "inline",
              "effectiveDirective": "script-src-elem", "disposition": "enforce"}},
    {"type": "deprecation", "age": 0, "url": "https://shop.example/x", "user_agent": "UA", "body": {"id": "x"}},
]).encode()
csp = [bytes([sel]) + b for b in [legacy, reporting] for sel in range(16)]
har = [open(os.path.join(FIX, "har", f), "rb").read() for f in sorted(os.listdir(os.path.join(FIX, "har"))) if f.endswith(".har")]

n = {
    "ingest": write("ingest", ingest),
    "csp": write("csp", csp),
    "har": write("har", har),
    "url": write("url", urls + classify_urls + [u + "\0/widget/*" for u in classify_urls[:10]] + ["https://a.example/support/x\0/support/*"]),
    "cookie": write("cookie", cmp_headers + ["; ".join(c + "=1" for c in cookie_names)] + [c + "=v" for c in cookie_names]),
    "tcf": write("tcf", tc_strings),
    "cmp": write("cmp", cmp_headers),
    "policy": write("policy", policies),
    "engine": write("engine", engine),
    "gpp": write("gpp", gpp_strings),
    "consent_mode": write("consent_mode", consent_mode),
    # Real bundles (tagwatch evidence, tests/fixtures/evidence): one made
    # before inventories and health reports were chained, one since.
    "bundle": write("bundle", [open(os.path.join(FIX, "evidence", name), "rb").read()
                               for name in ("bundle.zip", "bundle-page-views.zip")]),
}
print("seeds: " + ", ".join("%s %d" % kv for kv in n.items()), file=sys.stderr)
