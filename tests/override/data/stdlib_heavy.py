# stdlib_heavy.py: exercises much of CPython's stdlib (and so its allocator) deterministically.
import collections, decimal, difflib, fractions, hashlib, heapq, io, itertools, json, random
import re, sqlite3, statistics, textwrap, xml.etree.ElementTree as ET, zlib

rng = random.Random(1234)
words = ["".join(rng.choice("abcdefghij") for _ in range(rng.randint(2, 9))) for _ in range(50000)]
counts = collections.Counter(words)
print("distinct", len(counts), "top", counts.most_common(3))
doc = {w: [i, str(i) * 3, {"k": i % 7}] for i, w in enumerate(words[:20000])}
s = json.dumps(doc, sort_keys=True)
print("json", len(s), hashlib.sha256(s.encode()).hexdigest()[:16], len(json.loads(s)))
print("zlib", len(zlib.compress(s.encode(), 9)))
print("re", len(re.findall(r"\b[a-c]+\d*\b", " ".join(words))))
decimal.getcontext().prec = 60
print("decimal", decimal.Decimal(1) / decimal.Decimal(7) + sum(decimal.Decimal(i) / 3 for i in range(2000)))
print("fraction", sum(fractions.Fraction(1, i) for i in range(1, 300)).denominator % 1000003)
print("stats", statistics.mean(len(w) for w in words), statistics.median(len(w) for w in words))
heap = [(len(w), w) for w in words]
heapq.heapify(heap)
print("heap", [heapq.heappop(heap) for _ in range(5)])
print("diff", sum(1 for _ in difflib.unified_diff(words[:2000], sorted(words[:2000]), lineterm="")))
root = ET.Element("root")
for i in range(5000):
    ET.SubElement(root, "item", id=str(i)).text = words[i]
xml = ET.tostring(root)
print("xml", len(xml), len(ET.fromstring(xml).findall("item")))
db = sqlite3.connect(":memory:")
db.execute("create table t (w text, n int)")
db.executemany("insert into t values (?, ?)", ((w, i) for i, w in enumerate(words)))
print("sqlite", db.execute("select count(distinct w), sum(n) from t").fetchone())
print("perm", sum(1 for p in itertools.permutations(range(8)) if p[0] < p[-1]))
buf = io.StringIO()
for w in words[:3000]:
    buf.write(textwrap.fill(w * 20, 30) + "\n")
print("text", len(buf.getvalue()))
big = [list(range(i % 300)) for i in range(20000)]
print("lists", sum(map(len, big)))
