"""The int8 quality gate: the bundled model on ONNX Runtime in float32 and int8, on XQuAD-de dev and the news QA
dev split, side by side. int8 is the default only if R@1 and MRR@10 stay within 0.005 of float32 and the
first-sentence hit within 0.01 (with the reader and without).

    python -m bench.gate
"""

from __future__ import annotations

from dataclasses import replace

from bench.data import ROOT, XQUAD
from bench.report import save, table
from rag import evaluation
from rag.settings import Settings

FILES = {"news QA dev": ROOT / "data" / "news-qa" / "dev.json", "XQuAD-de dev": XQUAD}
LIMITS = {"R@1": 0.005, "MRR@10": 0.005, "first_sentence_hit": 0.01}


def main() -> None:
    rows, raw = [], {}
    for name, file in FILES.items():
        results = {rt: evaluation.run(file, replace(Settings(), runtime=rt), ["hybrid"], readers=(True, False))
                   for rt in ("onnx-fp32", "onnx-int8")}
        raw[name] = results
        for mode in results["onnx-fp32"]:
            fp32, int8 = (_figures(results[rt][mode]) for rt in ("onnx-fp32", "onnx-int8"))
            for metric, limit in LIMITS.items():
                rows.append({"set": name, "answers": mode, "metric": metric, "fp32": fp32[metric], "int8": int8[metric],
                             "int8 - fp32": int8[metric] - fp32[metric], "allowed": f"≥ -{limit}",
                             "pass": "yes" if int8[metric] - fp32[metric] >= -limit else "**no**"})
            for metric in ("answer_hit", "declined", "unanswerable_declined"):
                if metric in fp32:
                    rows.append({"set": name, "answers": mode, "metric": metric, "fp32": fp32[metric],
                                 "int8": int8[metric], "int8 - fp32": int8[metric] - fp32[metric]})
    passed = all(r["pass"] == "yes" for r in rows if "pass" in r)
    print(table(rows, ["set", "answers", "metric", "fp32", "int8", "int8 - fp32", "allowed", "pass"]))
    print(f"int8 {'passes' if passed else 'FAILS'} the gate")
    save("gate", {"rows": rows, "passed": passed, "limits": LIMITS, "results": raw})


def _figures(r: dict) -> dict[str, float]:
    out = {"R@1": r["passage"]["R@1"], "MRR@10": r["passage"]["MRR@10"], **r["answer"]}
    if "unanswerable" in r:
        out["unanswerable_declined"] = r["unanswerable"]["declined"]
    return out


if __name__ == "__main__":
    main()
