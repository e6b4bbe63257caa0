"""Questions for latency benchmarks: XQuAD-de dev questions plus news-style questions about 10kGNAD topics."""

from __future__ import annotations

from bench.data import XQUAD
from rag.evaluation import load_squad

NEWS = [
    "Was sagte der Bundeskanzler zur Flüchtlingspolitik?",
    "Wie hat Rapid Wien am Wochenende gespielt?",
    "Welche Forderungen stellt die Gewerkschaft bei den Lohnverhandlungen?",
    "Wie hoch ist die Arbeitslosigkeit in Österreich?",
    "Was kritisierte die Opposition am Budget?",
    "Wer gewann das Skirennen in Kitzbühel?",
    "Welche Folgen hat die Griechenland-Krise für den Euro?",
    "Wie äußerte sich der Innenminister zu den Grenzkontrollen?",
    "Was ist über den neuen Smartphone-Hersteller bekannt?",
    "Welche Pläne hat die Regierung für die Steuerreform?",
    "Wie reagierte die Börse auf die Zinsentscheidung?",
    "Was fordern die Grünen beim Klimaschutz?",
    "Wie viele Asylanträge wurden gestellt?",
    "Was sagte der Trainer nach der Niederlage?",
    "Welche Studie wurde zur Bildung veröffentlicht?",
    "Wann findet die Wahl in Wien statt?",
    "Welche Probleme hat die Hypo Alpe Adria verursacht?",
    "Was berichtete die Polizei über den Unfall?",
    "Wie entwickelt sich der Immobilienmarkt?",
    "Welche Filme liefen beim Festival?",
    "Was sagte der UN-Generalsekretär zum Syrien-Konflikt?",
    "Wie begründete das Gericht sein Urteil?",
    "Welche Rolle spielt Russland in der Ukraine-Krise?",
    "Was plant die EU-Kommission gegen Steuervermeidung?",
    "Wie hoch war der Gewinn der Bank im Quartal?",
]


def benchmark_questions(n: int = 200) -> list[str]:
    """`n` questions: all news-style ones, filled up with XQuAD-de dev questions."""
    _, questions = load_squad(XQUAD)
    return NEWS + [q.text for q in questions[: n - len(NEWS)]]
