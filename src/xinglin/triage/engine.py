"""The triage engine: complaint text (+ age, sex, pregnancy, vital signs) → clinic, urgency, red flags.

Deterministic rules; every decision can be traced to a line of a knowledge file. The steps:

1. normalise the text (width, case, Traditional → Simplified, typos) and read numbers from it
   (age "3个月宝宝", vital signs "血氧88", "体温39度5");
2. find terms of the lexicon and the red-flag atoms; mark those negated ("没有胸痛", "no fever") or
   about the past ("以前中风过"); join body parts with qualities ("肚子一阵阵地疼" → abdominal pain);
3. red flags and urgent combinations (red_flags.yaml) and vital-sign thresholds (vitals.yaml) set
   the urgency level; symptom concepts and modifiers ("剧烈", "突然", "复查") adjust it; then the
   statistical safety check (safety.py) may add red flags the rules missed and raise the level to 2
   (only raise: never lower a level, drop a flag or change the clinic);
4. department weights of everything found are added up; population rules (children, pregnancy, sex,
   the elderly) and level 1 (→ 急诊医学科) decide the final clinic and the two alternatives.

When nothing is recognised the patient is sent to 全科医疗科 and ``escalate`` is set, with a message.
"""

from __future__ import annotations

import bisect
import re
import unicodedata
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from xinglin.triage import safety
from xinglin.triage import text as textmod
from xinglin.triage.knowledge import Concept, Entry, FlagRule, Knowledge, Match, load, pinyin_key
from xinglin.triage.models import (
    DEPARTMENTS,
    LEVELS,
    VITAL_FIELDS,
    VITAL_RANGES,
    Alternative,
    RedFlag,
    TriageInputError,
    TriageResult,
)

_CLAUSE_SEP = re.compile(r"[,;!?\n\u3000。，；！？:：]|(?<!\d)\.|\.(?!\d)")
_CJK = re.compile(r"[\u4e00-\u9fff]")
# A new topic opens a new sentence: danger told "by the way" after a booking question is not framed by it.
_SENTENCE_SEP = re.compile(
    r"[!?\n。！？；;]|(?<!\d)\.(?!\d)|顺便说|顺便问|顺带说|对了|还有个事|还有件事|by the way|btw"
)
# Words that frame the message (a refill, a routine check, a question about a drug): they tone a rule down
# only inside their own sentence.
_FRAMING = frozenset({"followup", "drug_question"})
_EN_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")
_ASCII = re.compile(r"[a-z]")

# How far (in characters) a quality may be from its body part: "肚子一阵一阵地疼", "pain in my chest".
_PART_BEFORE_ZH, _PART_AFTER_ZH = 8, 3
_PART_BEFORE_EN, _PART_AFTER_EN = 30, 30
_SPACE_JOIN = 4  # a quality this close after a clause-ending space may join the part just before it
_PART_ALONE_FACTOR = 0.4  # a body part named without a symptom is weak evidence
_ICD_WEIGHT = {2: 2.0}  # by name length; longer names 2.5
_ALIAS_WEIGHT = 3.0
_FLAG_WEIGHT = 4.0
_COMBO_WEIGHT = 2.0
_VITALS_WEIGHT = 1.5  # abnormal vitals say "urgent", not which clinic
# Modifiers that a negation can cancel ("没怀孕", "不是很疼", "not severe").
_NEGATABLE_MODIFIERS = frozenset({"pregnancy", "postpartum", "severe", "extreme", "sudden", "child", "newborn"})

_INFANT_FEVER_AGE_LT = 0.25  # years: "fever in an infant under 3 months"
_SHOCK_INDEX_SBP_LT = 100  # heart rate >= systolic pressure below this: shock index >= 1
_HYPERPYREXIA_C, _HYPERPYREXIA_AGE_LT = 40.0, 6  # a child under 6 at 40 °C or more: level 2
_HYPO_GLUCOSE_LT, _HYPER_GLUCOSE_GE = 3.9, 16.7  # mmol/L: hypoglycaemia, marked hyperglycaemia → level 3

_SEX_ALIASES = {
    "male": "male",
    "m": "male",
    "man": "male",
    "男": "male",
    "1": "male",
    "female": "female",
    "f": "female",
    "woman": "female",
    "女": "female",
    "2": "female",
    "unknown": None,
    "0": None,
    "9": None,
    "": None,
}
_VITAL_ALIASES = {
    "hr": "heart_rate",
    "pulse": "heart_rate",
    "sbp": "systolic_bp",
    "dbp": "diastolic_bp",
    "rr": "resp_rate",
    "respiratory_rate": "resp_rate",
    "temp": "temperature",
    "t": "temperature",
    "sao2": "spo2",
    "o2": "spo2",
}


# ------------------------------------------------------------------------------------------------
# input checking (shared by the CLI and the HTTP API)


def _number(value: Any, field: str, zh: str, en: str) -> float:
    if isinstance(value, bool):
        raise TriageInputError(field, f"{zh}必须是数字", f"{en} must be a number")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            pass
    raise TriageInputError(field, f"{zh}必须是数字：{value!r}", f"{en} must be a number: {value!r}")


def check_age(age: Any) -> float | None:
    if age is None:
        return None
    value = _number(age, "age", "年龄", "age")
    if not 0 <= value <= 130:
        raise TriageInputError("age", f"年龄超出范围 0–130 岁：{age}", f"age out of range 0–130 years: {age}")
    return value


def check_sex(sex: Any) -> str | None:
    if sex is None:
        return None
    key = str(sex).strip().lower()
    if key not in _SEX_ALIASES:
        raise TriageInputError("sex", f"性别只能是 male 或 female：{sex!r}", f"sex must be 'male' or 'female': {sex!r}")
    return _SEX_ALIASES[key]


def check_pregnant(pregnant: Any) -> bool | None:
    if pregnant is None or isinstance(pregnant, bool):
        return pregnant
    if isinstance(pregnant, str) and pregnant.strip().lower() in {"true", "false", "yes", "no", "1", "0"}:
        return pregnant.strip().lower() in {"true", "yes", "1"}
    raise TriageInputError(
        "pregnant", f"是否怀孕必须是 true 或 false：{pregnant!r}", f"pregnant must be true or false: {pregnant!r}"
    )


def check_vitals(vitals: Any) -> dict[str, float]:
    if vitals is None:
        return {}
    if not isinstance(vitals, dict):
        raise TriageInputError("vitals", "生命体征必须是键值对象", "vitals must be an object of name: value")
    out: dict[str, float] = {}
    for raw_key, raw_value in vitals.items():
        key = _VITAL_ALIASES.get(str(raw_key).strip().lower(), str(raw_key).strip().lower())
        if key == "bp" and isinstance(raw_value, str) and "/" in raw_value:
            sbp, _, dbp = raw_value.partition("/")
            out["systolic_bp"] = check_vitals({"systolic_bp": sbp})["systolic_bp"]
            out["diastolic_bp"] = check_vitals({"diastolic_bp": dbp})["diastolic_bp"]
            continue
        field = f"vitals.{raw_key}"
        if key not in VITAL_FIELDS:
            raise TriageInputError(
                field,
                f"未知的生命体征：{raw_key}（可用：{', '.join(VITAL_FIELDS)}）",
                f"unknown vital sign: {raw_key} (known: {', '.join(VITAL_FIELDS)})",
            )
        if raw_value is None:
            continue
        value = _number(raw_value, field, f"生命体征 {raw_key} ", f"vital sign {raw_key}")
        lo, hi = VITAL_RANGES[key]
        if not lo <= value <= hi:
            raise TriageInputError(
                field,
                f"生命体征 {raw_key} 超出范围 {lo:g}–{hi:g}：{value:g}",
                f"{raw_key} out of range {lo:g}–{hi:g}: {value:g}",
            )
        out[key] = value
    return out


def check_request(obj: Any) -> dict[str, Any]:
    """Validate one request object ``{"text", "age", "sex", "pregnant", "vitals"}`` → assess() kwargs."""
    if not isinstance(obj, dict):
        raise TriageInputError("request", "每行必须是一个 JSON 对象", "each line must be a JSON object")
    unknown = set(obj) - {"text", "age", "sex", "pregnant", "vitals", "id"}
    if unknown:
        name = sorted(unknown)[0]
        raise TriageInputError(name, f"未知字段：{name}", f"unknown field: {name}")
    text = obj.get("text")
    if text is not None and not isinstance(text, str):
        raise TriageInputError("text", "主诉 text 必须是字符串", "text must be a string")
    return {
        "text": text or "",
        "age": check_age(obj.get("age")),
        "sex": check_sex(obj.get("sex")),
        "pregnant": check_pregnant(obj.get("pregnant")),
        "vitals": check_vitals(obj.get("vitals")),
    }


# ------------------------------------------------------------------------------------------------
# matching


@dataclass(slots=True)
class Occ:
    """One finding of a concept in the text."""

    cid: str
    start: int
    end: int
    text: str
    negated: bool = False
    historical: bool = False
    attached_to: str | None = None  # qualities: the body part they were joined with


def _drop_contained(matches: list[Match]) -> list[Match]:
    """Keep matches not strictly inside a longer match ("中风后遗症" hides "中风")."""
    ordered = sorted(matches, key=lambda m: (m.start, -m.end))
    kept: list[Match] = []
    max_end = -1
    for m in ordered:
        if m.end <= max_end:
            continue
        kept.append(m)
        max_end = max(max_end, m.end)
    # A match starting later can still contain an earlier kept one only if both start equal; handled
    # by the sort. Overlapping (not nested) matches are all kept: safer for red flags.
    return kept


def _correct_english(text: str, kb: Knowledge) -> str:
    def fix(m: re.Match[str]) -> str:
        word = m.group(0)
        if word in kb.typos_en:
            return kb.typos_en[word]
        if len(word) < 8 or word in kb.en_vocab or word in kb.en_common:
            return word
        candidates = set()
        if word in kb.en_deletes:
            candidates.add(kb.en_deletes[word])
        for i in range(len(word)):
            d = word[:i] + word[i + 1 :]
            if d in kb.en_deletes:
                candidates.add(kb.en_deletes[d])
        candidates = {c for c in candidates if c[0] == word[0] and len(c) >= 8 and abs(len(c) - len(word)) <= 1}
        return candidates.pop() if len(candidates) == 1 else word

    text = _EN_WORD.sub(fix, text)
    for pattern, repl in kb.typo_phrases_en:
        text = pattern.sub(repl, text)
    return text


_TONED_LATIN = re.compile(r"[\u00c0-\u024f]")


def _pinyin_to_hanzi(text: str, kb: Knowledge) -> str:
    """Danger words typed in pinyin ("wo xiang si le", "xiōng kǒu téng") → Chinese characters."""
    if kb.pinyin is None:
        return text
    text = _TONED_LATIN.sub(lambda m: unicodedata.normalize("NFD", m.group(0))[0], text)
    return kb.pinyin.sub(lambda m: kb.pinyin_words.get(pinyin_key(m.group(0)), m.group(0)), text)


def prepare_text(raw: str, kb: Knowledge) -> str:
    norm = textmod.normalise(raw)
    for wording, mandarin in kb.dialect:
        if wording in norm:
            norm = norm.replace(wording, mandarin)
    if _ASCII.search(norm) or _TONED_LATIN.search(norm):
        norm = _pinyin_to_hanzi(norm, kb)
    for wrong, right in kb.typos_zh:
        if wrong in norm:
            norm = norm.replace(wrong, right)
    if _ASCII.search(norm):
        norm = _correct_english(norm, kb)
    return norm


@dataclass
class Analysis:
    text: str
    presence: dict[str, list[Occ]]
    modifiers: dict[str, list[Occ]]
    part_use: dict[str, str]  # part id -> "composed" | "symptom" | "alone"
    aliases: list[tuple[str, int, str]]  # (dept code, position, text)
    icd: list[tuple[str, int, str]]  # (dept code, position, name)
    negated: list[str]

    def has(self, cid: str, *, current: bool = False, kb: Knowledge | None = None) -> Occ | None:
        for occ in self.presence.get(cid, ()):  # concepts, parts, qualities, atoms
            if occ.negated or (current and occ.historical):
                continue
            if kb is not None and not _free_ok(occ, kb.concepts[cid]):
                continue
            return occ
        for occ in self.modifiers.get(cid, ()):
            if not occ.negated:
                return occ
        return None


def _free_ok(occ: Occ, concept: Concept) -> bool:
    if concept.free_parts is None or occ.attached_to is None:
        return True
    return occ.attached_to in concept.free_parts


def analyse(norm: str, kb: Knowledge) -> Analysis:
    sem_all = kb.semantic.scan(norm)
    sem = _drop_contained(sem_all)
    # Patterns (words with gaps, same clause): kept beside the exact terms, never hiding them. Like a
    # term, a pattern found inside a longer exact term means nothing ("痒得想死", "眼药水").
    exact = sorted((m.start, m.end, m.entries[0].kind == "ignore") for m in sem_all)
    exact_starts = [s for s, _, _ in exact]
    reach: list[int] = []  # reach[i]: the furthest end of the exact terms exact[:i+1]
    for _, e, _ in exact:
        reach.append(max(e, reach[-1] if reach else -1))

    def hidden(ps: int, pe: int) -> bool:
        lo = bisect.bisect_left(exact_starts, ps)
        if lo and reach[lo - 1] >= pe:  # a term starting earlier covers it
            return True
        hi = bisect.bisect_right(exact_starts, ps)
        return any(e > pe or (e == pe and ign) for _, e, ign in exact[lo:hi])

    found_overlay = [(m.start, m.end, m.term, m.entries) for m in kb.overlay.scan(norm)]
    for cid, pattern in kb.patterns:
        entry = (Entry("atom", cid),)
        found_overlay.extend((pm.start(), pm.end(), pm.group(0), entry) for pm in pattern.finditer(norm))
    for ps, pe, term, entries in found_overlay:
        if pe == ps or hidden(ps, pe):
            continue
        found = Match(ps, pe, term, entries)
        sem_all.append(found)
        sem.append(found)
    sem.sort(key=lambda m: (m.start, -m.end))
    mods_all = kb.modifiers.scan(norm)
    mods = _drop_contained(mods_all)
    cues = _drop_contained(kb.cues.scan(norm))
    icd = _drop_contained(kb.icd.scan(norm)) if _CJK.search(norm) else []

    seps = [m.start() for m in _CLAUSE_SEP.finditer(norm)]

    def clause(pos: int) -> int:
        return bisect.bisect_right(seps, pos)

    history_clauses = {clause(m.start) for m in mods for e in m.entries if e.id == "history"}

    covered = sorted((m.start, m.end) for m in sem_all + mods_all if m.end - m.start > 1)

    def inside_term(start: int, end: int) -> bool:
        i = bisect.bisect_right(covered, (start, 10**9))
        return any(s <= start and end <= e and e - s > end - start for s, e in covered[max(0, i - 40) : i])

    strong, weak, terms_end = [], [], []
    for c in cues:
        for e in c.entries:
            if e.kind == "terminator":
                terms_end.append(c)
            elif not inside_term(c.start, c.end):
                (weak if e.kind == "cue_weak" else strong).append(c)
    starts = sorted(m.start for m in sem if any(e.kind != "ignore" for e in m.entries))
    wscope, zscope, escope = kb.scope.get("weak", 2), kb.scope.get("zh", 14), kb.scope.get("en", 45)

    def negated(start: int, end: int | None = None) -> bool:
        """Is the term at ``start`` negated? With ``end`` (modifiers), a cue may overlap the term:
        "不是很疼" = cue "不是很" + modifier "很疼"."""
        cl = clause(start)
        for c in weak:
            if end is not None and c.start < start < c.end <= end:
                return True
            if c.end <= start and start - c.end <= wscope and clause(c.start) == cl:
                i = bisect.bisect_left(starts, c.end)
                if i < len(starts) and starts[i] == start:  # the very next term
                    return True
                if end is not None:
                    return True
        for c in strong:
            if end is not None and c.start < start < c.end <= end:
                return True
            if c.end > start or clause(c.start) != cl:
                continue
            limit = escope if _ASCII.match(c.term) else zscope
            if start - c.end > limit:
                continue
            if any(c.end <= t.start and t.end <= start for t in terms_end):
                continue
            return True
        return False

    presence: dict[str, list[Occ]] = defaultdict(list)
    aliases: list[tuple[str, int, str]] = []
    part_occs: list[Occ] = []
    quality_occs: list[Occ] = []
    concept_occs: list[Occ] = []
    for m in sem:
        neg: bool | None = None
        for e in m.entries:
            if e.kind == "dept":
                aliases.append((e.id, m.start, m.term))
                continue
            if e.kind not in {"concept", "part", "quality", "atom"}:
                continue
            if neg is None:
                neg = negated(m.start)
            occ = Occ(e.id, m.start, m.end, m.term, neg, clause(m.start) in history_clauses)
            presence[e.id].append(occ)
            if e.kind == "part":
                part_occs.append(occ)
            elif e.kind == "concept":
                concept_occs.append(occ)
            elif e.kind == "quality":
                quality_occs.append(occ)

    # Join qualities with body parts in the same clause.
    part_use: dict[str, str] = {}
    for p in part_occs:
        part_use.setdefault(p.cid, "alone")
    for q in quality_occs:
        cl = clause(q.start)
        en = bool(_ASCII.match(q.text))
        before = _PART_BEFORE_EN if en else _PART_BEFORE_ZH
        after = _PART_AFTER_EN if en else _PART_AFTER_ZH
        joined = [p for p in part_occs if p.end <= q.start and q.start - p.end <= before and clause(p.start) == cl]
        if not joined:
            nxt = [p for p in part_occs if p.start >= q.end and p.start - q.end <= after and clause(p.start) == cl]
            joined = nxt[:1]
        if not joined and not en and cl:
            # "眼睛　有点肿", "脚踝　肿得厉害": a quality opening a clause cut only by a space belongs to the part
            # named just before the space.
            sep = seps[cl - 1]
            if norm[sep] == textmod.CLAUSE_SPACE and q.start - sep <= _SPACE_JOIN:
                prev = [
                    p for p in part_occs if p.end <= sep and sep - p.end <= _SPACE_JOIN and clause(p.start) == cl - 1
                ]
                joined = prev[-1:]
        for p in joined:
            q.attached_to = q.attached_to or p.cid
            target = kb.compose.get(p.cid, {}).get(q.cid)
            if target:
                start, end = min(p.start, q.start), max(p.end, q.end)
                presence[target].append(
                    Occ(target, start, end, norm[start:end], p.negated or q.negated, p.historical or q.historical)
                )
                if not (p.negated or q.negated):
                    part_use[p.cid] = "composed"
            elif not (p.negated or q.negated) and part_use.get(p.cid) != "composed":
                part_use[p.cid] = "symptom"
        if not joined:
            # "痔疮出血", "伤口流脓": a quality right after a named condition belongs to it.
            owner = next(
                (
                    o
                    for o in concept_occs
                    if o.end <= q.start and q.start - o.end <= 2 and clause(o.start) == cl and o.cid != q.cid
                ),
                None,
            )
            if owner is not None:
                q.attached_to = owner.cid
                continue
        if not joined and q.cid in kb.orphans:
            target = kb.orphans[q.cid]
            presence[target].append(Occ(target, q.start, q.end, q.text, q.negated, q.historical))

    modifiers: dict[str, list[Occ]] = defaultdict(list)
    for m in mods:
        for e in m.entries:
            neg = negated(m.start, m.end) if e.id in _NEGATABLE_MODIFIERS else False
            modifiers[e.id].append(Occ(e.id, m.start, m.end, m.term, neg, clause(m.start) in history_clauses))

    icd_hits: list[tuple[str, int, str]] = []
    sem_spans = [(m.start, m.end) for m in sem if any(e.kind != "ignore" for e in m.entries)]
    for m in icd:
        if any(s <= m.start and m.end <= e and (e - s) >= (m.end - m.start) for s, e in sem_spans):
            continue
        if negated(m.start):
            continue
        icd_hits.append((m.entries[0].id, m.start, m.term))

    negated_terms = sorted({o.text for occs in presence.values() for o in occs if o.negated})
    return Analysis(norm, dict(presence), dict(modifiers), part_use, aliases, icd_hits, negated_terms)


# ------------------------------------------------------------------------------------------------
# decisions


def _vital_level(name: str, value: float, kb: Knowledge) -> int:
    for level in sorted(kb.vitals.get(name, {})):
        if any(t.test(value) for t in kb.vitals[name][level]):
            return level
    return 4


@dataclass
class FlagHit:
    code: str | None
    level: int
    dept: str
    evidence: str
    settles: tuple[str, ...] = ()


def _evaluate_flags(a: Analysis, kb: Knowledge, age: float | None, pregnant: bool, child: bool) -> list[FlagHit]:
    hits: list[FlagHit] = []
    for rule in kb.flags:
        if rule.child is not None and rule.child != child:
            continue
        if not _rule_applies(rule, a, kb, age, pregnant):
            continue
        evidence: list[str] = []
        occs: list[Occ] = []
        for group in rule.groups:
            found = None
            for cid in group:
                found = a.has(cid, current=rule.current, kb=kb)
                if found:
                    break
            if found is None:
                break
            occs.append(found)
            if found.text not in evidence:
                evidence.append(found.text)
        else:
            if _framed_away(rule, a, occs):
                continue
            hits.append(FlagHit(rule.code, rule.level, rule.dept, " + ".join(evidence), rule.settles))
    return hits


def _sentence(text: str, pos: int) -> int:
    return len(_SENTENCE_SEP.findall(text, 0, max(pos, 0)))


def _framed_away(rule: FlagRule, a: Analysis, evidence: list[Occ]) -> bool:
    """A framing word ("续方", "一直吃", "能不能吃") silences a rule only within its own sentence: a question
    about a refill must not hide "左手没劲，说话不清楚" told in the next sentence. A red flag anywhere wins."""
    framing = [cid for cid in rule.unless if cid in _FRAMING]
    if not framing:
        return False
    if any(o.start < 0 for o in evidence):
        return True  # synthetic evidence (vitals) has no sentence: keep the old, text-wide reading
    where = {_sentence(a.text, o.start) for o in evidence}
    for cid in framing:
        for occ in [*a.presence.get(cid, ()), *a.modifiers.get(cid, ())]:
            if not occ.negated and (occ.start < 0 or _sentence(a.text, occ.start) in where):
                return True
    return False


def _rule_applies(rule: FlagRule, a: Analysis, kb: Knowledge, age: float | None, pregnant: bool) -> bool:
    if rule.age_lt is not None and (age is None or age >= rule.age_lt):
        return False
    if rule.age_ge is not None and (age is None or age < rule.age_ge):
        return False
    if rule.pregnant and not pregnant:
        return False
    return not any(a.has(cid) for cid in rule.unless if cid not in _FRAMING)


def _denied(a: Analysis, *families: tuple[str, ...]) -> bool:
    """Every family was named and negated, none is present ("pregnant 16 weeks, no bleeding, no pain")."""
    for family in families:
        occs = [o for cid in family for o in a.presence.get(cid, ())]
        if not occs or any(not o.negated for o in occs):
            return False
    return True


def _explain_list(items: list[str], limit: int = 6) -> str:
    items = list(dict.fromkeys(items))
    return "、".join(items[:limit]) + ("等" if len(items) > limit else "")


def safety_view(norm: str, a: Analysis, kb: Knowledge) -> str:
    """The text the safety model reads: spans the rules found negated ("没有胸痛"), about the past
    ("以前中风过") or listed as harmless ("热得想死", "眼药水") are blanked out, so that the model does
    not overrule what the rules understood."""
    if not norm:
        return norm
    chars = list(norm)
    spans = [(o.start, o.end) for occs in a.presence.values() for o in occs if o.negated or o.historical]
    spans += [(o.start, o.end) for occs in a.modifiers.values() for o in occs if o.negated]
    spans += [(m.start, m.end) for m in kb.semantic.scan(norm) if all(e.kind == "ignore" for e in m.entries)]
    for start, end in spans:
        if 0 <= start < end:
            chars[start:end] = " " * (end - start)
    # The model was trained on text where a space between Chinese words was simply removed.
    return "".join(chars).replace(textmod.CLAUSE_SPACE, "")


def assess(
    text: str | None,
    *,
    age: float | None = None,
    sex: str | None = None,
    pregnant: bool | None = None,
    vitals: dict[str, Any] | None = None,
) -> TriageResult:
    """Triage one complaint. Any text is accepted; bad arguments raise :class:`TriageInputError`."""
    return _assess(text, age=age, sex=sex, pregnant=pregnant, vitals=vitals, safety_check=True)


def assess_rules_only(
    text: str | None,
    *,
    age: float | None = None,
    sex: str | None = None,
    pregnant: bool | None = None,
    vitals: dict[str, Any] | None = None,
) -> TriageResult:
    """:func:`assess` without the statistical safety check (for training and measuring that check)."""
    return _assess(text, age=age, sex=sex, pregnant=pregnant, vitals=vitals, safety_check=False)


def _assess(
    text: str | None,
    *,
    age: Any,
    sex: Any,
    pregnant: Any,
    vitals: Any,
    safety_check: bool,
) -> TriageResult:
    age_in = check_age(age)
    sex_in = check_sex(sex)
    pregnant_in = check_pregnant(pregnant)
    vitals_in = check_vitals(vitals)
    kb = load()

    raw = text if isinstance(text, str) else ("" if text is None else str(text))
    warnings: list[str] = []
    if len(raw) > textmod.LONG_TEXT_CHARS:
        warnings.append("text_too_long")
        raw = raw[: textmod.MAX_ANALYSED_CHARS]
    norm = prepare_text(raw, kb)
    if not norm:
        warnings.append("empty_text")
    elif not textmod.has_words(norm):
        warnings.append("no_words")

    numeric = textmod.numeric_view(norm)
    text_vitals = textmod.read_vitals(numeric) if norm else {}
    glucose = text_vitals.pop("glucose", None)
    measured = {**text_vitals, **vitals_in}
    a = analyse(norm, kb) if norm else Analysis(norm, {}, {}, {}, [], [], [])

    # ---- who is the patient
    age_val = age_in if age_in is not None else (textmod.read_age(numeric) if norm else None)
    if age_in == 0 and norm:
        # A whole-year age of 0 only says "under one": the text ("四个多月") is more precise.
        text_age = textmod.read_age(numeric)
        if text_age is not None and 0 < text_age < 1:
            age_val = text_age
    # Words for a baby in a pregnant woman's complaint ("baby is moving", "宝宝踢我") are about the fetus.
    pregnancy_words = bool(a.has("pregnancy") or a.has("obstetric") or a.has("fetal_alarm"))
    child_words = bool(a.has("child")) and not (pregnant_in or pregnancy_words)
    is_child = age_val < kb.population["child"]["age_lt"] if age_val is not None else child_words
    if age_val is None and a.has("newborn"):
        age_val = 0.05
    sex_val = sex_in
    if sex_val is None:
        male, female = bool(a.has("male")), bool(a.has("female"))
        sex_val = "male" if male and not female else "female" if female and not male else None
    preg_cfg = kb.population["pregnancy"]
    text_pregnant = bool(a.has("pregnancy") or a.has("obstetric") or a.has("fetal_alarm")) and not a.has("postpartum")
    if sex_val == "male" or (age_val is not None and (age_val >= preg_cfg["max_age"] or age_val < 10)):
        text_pregnant = False
    is_pregnant = bool(pregnant_in) or (pregnant_in is None and text_pregnant)
    if pregnant_in is False and text_pregnant and a.has("pregnancy"):
        is_pregnant = True  # the words win over an unticked box: missing a pregnancy is the worse error
    if sex_val == "male":
        is_pregnant = False

    # ---- synthetic findings from measured temperature (so "infant + 38.5 °C" is an infant fever)
    temp = measured.get("temperature")
    if temp is not None and temp >= 37.5:
        tag = f"体温{temp:g}℃"
        a.presence.setdefault("fever", []).append(Occ("fever", -1, -1, tag))
        if temp >= 39:
            a.presence.setdefault("high_fever", []).append(Occ("high_fever", -1, -1, tag))
        elif temp < 38:  # low-grade: an adult or a child with it can wait longer than 30 minutes
            a.presence.setdefault("low_fever_measured", []).append(Occ("low_fever_measured", -1, -1, tag))
        if temp < 38.5:
            a.presence.setdefault("fever_under_385", []).append(Occ("fever_under_385", -1, -1, tag))

    gcs = measured.get("gcs")
    if gcs is not None and gcs <= 12:
        cid = "unconscious" if gcs < 9 else "confused"
        a.presence.setdefault(cid, []).append(Occ(cid, -1, -1, f"GCS {gcs:g}"))
    pills = textmod.read_pill_count(numeric) if norm else None
    if pills is not None and pills >= 10:
        a.presence.setdefault("overdose_amount", []).append(Occ("overdose_amount", -1, -1, f"{pills}片"))
        a.presence.setdefault("big_overdose", []).append(Occ("big_overdose", -1, -1, f"{pills}片"))
    spo2 = measured.get("spo2")
    if spo2 is not None and spo2 < 90:
        a.presence.setdefault("hypoxia", []).append(Occ("hypoxia", -1, -1, f"SpO2 {spo2:g}%"))

    # ---- red flags and urgent combinations
    sbp, dbp = measured.get("systolic_bp"), measured.get("diastolic_bp")
    if (sbp is not None and sbp >= 140) or (dbp is not None and dbp >= 90):
        a.presence.setdefault("high_bp_measured", []).append(Occ("high_bp_measured", -1, -1, "BP"))
    if (sbp is not None and sbp >= 160) or (dbp is not None and dbp >= 100):
        a.presence.setdefault("high_bp_reading", []).append(Occ("high_bp_reading", -1, -1, "BP"))
    if sbp is not None and sbp < 90:  # measured shock: counts like the words for it ("脸白得像纸")
        a.presence.setdefault("shock_pattern", []).append(Occ("shock_pattern", -1, -1, f"SBP {sbp:g}"))
    if sbp is not None and sbp < 80:  # with chest pain, fever or bleeding: shock, level 1
        a.presence.setdefault("hypotension_measured", []).append(Occ("hypotension_measured", -1, -1, f"SBP {sbp:g}"))
    hr = measured.get("heart_rate")
    if hr is not None and (hr < 60 or hr > 100):
        a.presence.setdefault("abnormal_hr_measured", []).append(Occ("abnormal_hr_measured", -1, -1, "HR"))
    hits = _evaluate_flags(a, kb, age_val, is_pregnant, is_child)
    vital_levels = {name: _vital_level(name, value, kb) for name, value in measured.items()}
    if is_child and age_val is not None and age_val < _HYPERPYREXIA_AGE_LT and (temp or 0) >= _HYPERPYREXIA_C:
        vital_levels["temperature"] = min(vital_levels["temperature"], 2)  # hyperpyrexia in a young child
    abnormal = {n: v for n, v in measured.items() if vital_levels[n] <= 2}
    shock_index = hr is not None and sbp is not None and sbp < _SHOCK_INDEX_SBP_LT and hr >= sbp
    if abnormal or shock_index:
        evidence_vitals = [f"{n}={v:g}" for n, v in abnormal.items()]
        if shock_index:
            evidence_vitals.append(f"shock index {hr:g}/{sbp:g}")
        hits.append(
            FlagHit(
                "abnormal_vitals",
                min([vital_levels[n] for n in abnormal] + ([2] if shock_index else [])),
                "20",
                ", ".join(evidence_vitals),
            )
        )
    if glucose is not None and glucose < 3.0:
        hits.append(FlagHit(None, 2, "03.07", f"血糖{glucose:g}"))
    elif glucose is not None and (glucose < _HYPO_GLUCOSE_LT or glucose >= _HYPER_GLUCOSE_GE):
        # a low reading, even one already corrected, or a high one: seen the same day
        hits.append(FlagHit(None, 3, "03.07", f"血糖{glucose:g}"))

    flags: dict[str, FlagHit] = {}
    for h in hits:
        if h.code and (h.code not in flags or h.level < flags[h.code].level):
            flags[h.code] = h
    # Two danger signs together (e.g. heavy bleeding + breathing difficulty): level 1.
    for code in kb.compound_level_1:
        others = [h for h in hits if h.level <= 2 and h.code != code and h.code != "abnormal_vitals"]
        mild = kb.compound_mild.get(code, ())
        # Drowsy but rousable, slowed or seeing things ("打蔫", "叫醒又睡", "说胡话") does not make the other
        # danger sign level 1; being hard to rouse ("叫不太醒", "叫半天才哼一声") does.
        strong = [h for h in hits if h.code == code and h.level <= 2 and not any(w in h.evidence.lower() for w in mild)]
        if code in flags and others and strong:
            flags[code] = FlagHit(code, 1, flags[code].dept, flags[code].evidence)
            hits.append(flags[code])

    # A flag that implies another (a convulsion in progress → consciousness lost): same level and evidence.
    for code, implied, with_any, unless in kb.implies:
        if code not in flags or implied in flags or any(a.has(c) for c in unless):
            continue
        if not with_any or any(a.has(c) for c in with_any):
            flags[implied] = FlagHit(implied, flags[code].level, flags[code].dept, flags[code].evidence)

    # ---- urgency level
    reasons: list[str] = []
    level = 4
    symptom_found = False
    chronic = bool(a.has("followup") or a.has("drug_question"))
    acute = bool(a.has("severe") or a.has("extreme") or a.has("sudden"))
    for cid, occs in a.presence.items():
        c = kb.concepts.get(cid)
        if c is None or c.kind != "concept":
            continue
        live = [o for o in occs if not o.negated and not o.historical]
        if not live:
            continue
        if "symptom" in c.tags or c.level < 4:
            symptom_found = True
        if c.level < level and (not chronic or acute):
            level = c.level
            reasons.append(live[0].text)
    if any(a.has(q) for q in ("pain",)) or any(u == "symptom" for u in a.part_use.values()):
        symptom_found = True
    if symptom_found:
        if a.has("extreme"):
            level = min(level, 2)
            reasons.append(a.has("extreme").text)  # type: ignore[union-attr]
        elif a.has("severe") or a.has("sudden"):
            level = min(level, 3)
            reasons.append((a.has("severe") or a.has("sudden")).text)  # type: ignore[union-attr]
    infant = kb.population["infant"]
    if age_val is not None and age_val < infant["age_lt"] and any(a.has(c) for c in infant["concepts"]):
        level = min(level, int(infant["level"]))
    for h in hits:
        level = min(level, h.level)
    level = min(level, *vital_levels.values()) if vital_levels else level

    # ---- statistical safety check: may add red flags and raise the level to 2, never anything else
    # It speaks only when the rules found no red flag in the text and left the level at 3 or 4, or only the
    # vital signs are abnormal (anything else is already escalated at level <= 2 with the flag named, so the
    # model could add nothing but noise), and it reads the text with what the rules know to be negated, past
    # or harmless blanked out.
    model_flags: list[str] = []
    text_flags = set(flags) - {"abnormal_vitals"}
    if safety_check and norm and "no_words" not in warnings and not text_flags and (level >= 3 or flags):
        model = safety.get_model()
        if model is None:
            warnings.append("safety_model_unavailable")
        else:
            # Codes a rule has explicitly judged ("a swallowed coin, no coughing or breathing trouble") or
            # that cannot apply to this patient (a man, a baby over a year old) are not the model's to add.
            settled = {c for h in hits for c in h.settles}
            if not is_pregnant or _denied(a, ("pregnancy_bleed", "vaginal_bleeding"), ("pain", "abdominal_pain")):
                settled.add("pregnancy_bleeding_pain")
            if age_val is not None and age_val >= _INFANT_FEVER_AGE_LT:
                settled.add("infant_fever")  # the flag is defined for babies under three months
            for code, _prob, grams in model.predict(safety_view(norm, a, kb), age_in, pregnant_in):
                if code in flags or code in settled:
                    continue
                flags[code] = FlagHit(code, 2, "", "模型：" + ", ".join(grams) if grams else "模型")
                model_flags.append(code)
            if model_flags:
                level = min(level, 2)

    # ---- department scores
    scores: dict[str, float] = defaultdict(float)
    first_pos: dict[str, int] = {}
    evidence: list[str] = []

    def add(code: str, weight: float, pos: int) -> None:
        scores[code] += weight
        first_pos[code] = min(first_pos.get(code, 10**9), pos)

    for cid, occs in a.presence.items():
        c = kb.concepts.get(cid)
        live = [o for o in occs if not o.negated]
        if c is None or not live or not c.dept:
            continue
        factor = 1.0
        if c.kind == "part":
            use = a.part_use.get(cid, "alone")
            factor = 0.0 if use == "composed" else 1.0 if use == "symptom" else _PART_ALONE_FACTOR
        if factor == 0.0:
            continue
        if c.kind == "concept":
            evidence.append(live[0].text)
        if is_child and "child_general" in c.tags:
            # Colds, fevers, coughs, tummy upsets of children belong to 儿科, whatever an adult would see.
            add(kb.population["child"]["department"], 1.5 * sum(c.dept.values()), live[0].start)
            factor *= 0.3
        for code, w in c.dept.items():
            add(code, w * factor, live[0].start)
    for code, pos, _term in {(c, p, t) for c, p, t in a.aliases}:
        add(code, _ALIAS_WEIGHT, pos)
    seen_icd: set[str] = set()
    for code, pos, name in a.icd:
        if name in seen_icd:
            continue
        seen_icd.add(name)
        evidence.append(name)
        add(code, _ICD_WEIGHT.get(len(name), 2.5), pos)
    for h in hits:
        if h.code is None and h.dept == "02":
            continue  # an urgency-only combination: says nothing about the clinic
        weight = _VITALS_WEIGHT if h.code == "abnormal_vitals" else _FLAG_WEIGHT if h.code else _COMBO_WEIGHT
        add(h.dept, weight, 10**6)

    sex_cfg = kb.population.get("sex", {})
    if sex_val == "male":
        for code, target in (sex_cfg.get("male_excludes") or {}).items():
            if scores.get(code):
                add(target, scores.pop(code), first_pos.pop(code, 10**6))
    if sex_val == "female" and a.has("lower_abdominal_pain"):
        for code, w in (sex_cfg.get("female_lower_abdomen_bonus") or {}).items():
            add(code, float(w), 10**6)

    ranked = sorted((c for c in scores if scores[c] > 0), key=lambda c: (-scores[c], first_pos.get(c, 10**9), c))
    unsure = not ranked
    messages: list[str] = []
    messages_en: list[str] = []

    # ---- population rules on the ranking
    order = list(ranked)
    if not order:
        order = ["02"]
    primary = order[0]
    if is_child:
        child = kb.population["child"]
        if primary in child["surgical"]:
            order.insert(0, child["surgical_department"])
        elif primary not in child["keep"]:
            order.insert(0, child["department"])
    if is_pregnant:
        takes = set(preg_cfg["takes"])
        if order[0] in takes:
            order.insert(0, preg_cfg["department"])
        elif preg_cfg["department"] not in order[:2]:
            order.insert(1, preg_cfg["department"])
    elderly = kb.population["elderly"]
    is_elderly = (age_val is not None and age_val >= elderly["age_ge"]) or (age_val is None and a.has("elderly"))
    if is_elderly and order[0] in elderly["from"] and elderly["department"] not in order[:3]:
        strong_alternatives = [c for c in order[1:] if scores.get(c, 0) >= 0.5 * scores.get(order[0], 1)]
        order.insert(min(2, 1 + len(strong_alternatives[:1])), elderly["department"])
    if level == 1 and order[0] != "20":
        order.insert(0, "20")
    elif level <= 2 and "20" not in order[:2]:
        order.insert(1, "20")
    order = list(dict.fromkeys(order))
    related = kb.population.get("related", {})
    for filler in [*related.get(order[0], []), _parent(order[0]), "02", "20", "03"]:
        if filler and filler not in order:
            order.append(filler)
    department = DEPARTMENTS[order[0]]
    total = sum(v for v in scores.values() if v > 0) or 1.0
    alt_scores = [round(scores.get(c, 0.0) / total, 2) for c in order[1:3]]
    # Rules (emergency, population) may rank a clinic above one with more lexical evidence; keep the scores
    # in rank order so that a consumer sorting by score sees the same ranking.
    for i in range(len(alt_scores) - 2, -1, -1):
        alt_scores[i] = max(alt_scores[i], alt_scores[i + 1])
    alternatives = tuple(Alternative(DEPARTMENTS[c], sc) for c, sc in zip(order[1:3], alt_scores, strict=True))

    # ---- escalation and messages
    red_flags = tuple(RedFlag(code, flags[code].evidence) for code in flags)
    escalate = bool(red_flags) or level <= 2 or unsure or "text_too_long" in warnings
    if "empty_text" in warnings:
        messages.append("没有收到症状描述，请描述哪里不舒服，或咨询分诊护士")
        messages_en.append("No complaint was given: describe what is wrong, or ask the triage nurse")
    elif "no_words" in warnings:
        messages.append("未能读懂输入（只有符号或表情），请用文字描述症状，或咨询分诊护士")
        messages_en.append(
            "The input has no words (only symbols or emoji): describe the symptoms, or ask the triage nurse"
        )
    elif unsure and not hits:
        messages.append("未能识别具体症状，建议先看全科医疗科，并由分诊护士人工确认")
        messages_en.append("No specific symptom recognised: see General Practice, and a triage nurse will check")
    if "text_too_long" in warnings:
        messages.append(f"描述超过{textmod.LONG_TEXT_CHARS}字，已按内容初步分诊，请由分诊护士人工复核")
        messages_en.append(
            f"Text longer than {textmod.LONG_TEXT_CHARS} characters: provisional result, a triage nurse will review"
        )

    if model_flags:
        names = "、".join(_FLAG_NAMES[c][0] for c in model_flags)
        messages.append(f"统计安全检查提示可能存在危险信号（{names}），已提高紧急程度，请由分诊护士人工确认")
        messages_en.append(
            "Raised by the statistical safety check (possible "
            + ", ".join(_FLAG_NAMES[c][1] for c in model_flags)
            + "): urgency raised, a triage nurse will confirm"
        )
    explanation, explanation_en = _explain(
        department.code,
        level,
        flags,
        evidence,
        reasons,
        a,
        measured,
        age_val,
        is_child,
        is_pregnant,
        messages,
        messages_en,
    )
    top = scores.get(department.code, 0.0)
    return TriageResult(
        department=department,
        alternatives=alternatives,
        level=level,
        red_flags=red_flags,
        escalate=escalate,
        explanation=explanation,
        explanation_en=explanation_en,
        score=round(top / total, 2) if top else 0.0,
        warnings=tuple(warnings + (["unrecognised"] if unsure and norm and "no_words" not in warnings else [])),
    )


def _parent(code: str) -> str | None:
    return code.split(".")[0] if "." in code else None


_FLAG_NAMES = {
    "chest_pain_acs": ("危险胸痛（疑似急性冠脉综合征/主动脉夹层）", "dangerous chest pain (possible ACS/dissection)"),
    "stroke": ("疑似脑卒中", "possible stroke"),
    "breathing_difficulty": ("呼吸困难", "breathing difficulty"),
    "anaphylaxis": ("严重过敏反应", "anaphylaxis"),
    "seizure_ongoing": ("抽搐发作", "seizure"),
    "altered_consciousness": ("意识改变", "altered consciousness"),
    "heavy_bleeding": ("大出血", "heavy bleeding"),
    "poisoning": ("中毒", "poisoning"),
    "suicidal_intent": ("自杀/自伤意念", "suicidal or self-harm intent"),
    "thunderclap_headache": ("危险头痛（霹雳样头痛）", "thunderclap / dangerous headache"),
    "hematemesis": ("消化道出血（呕血/黑便）", "GI bleeding (vomiting blood / melena)"),
    "pregnancy_bleeding_pain": ("孕期出血或腹痛", "bleeding or pain in pregnancy"),
    "infant_fever": ("3个月以下婴儿发热", "fever in an infant under 3 months"),
    "chemical_eye_injury": ("化学性眼外伤", "chemical eye injury"),
    "airway_foreign_body": ("气道异物", "airway foreign body"),
    "abnormal_vitals": ("生命体征异常", "abnormal vital signs"),
}


def _explain(
    dept: str,
    level: int,
    flags: dict[str, FlagHit],
    evidence: list[str],
    reasons: list[str],
    a: Analysis,
    measured: dict[str, float],
    age: float | None,
    child: bool,
    pregnant: bool,
    messages: list[str],
    messages_en: list[str],
) -> tuple[str, str]:
    d, lv = DEPARTMENTS[dept], LEVELS[level]
    zh: list[str] = []
    en: list[str] = []
    if evidence:
        zh.append(f"识别到：{_explain_list(evidence)}")
        en.append(f"Recognised: {_explain_list(evidence).replace('、', ', ')}")
    if a.negated:
        zh.append(f"已排除（否定）：{_explain_list(a.negated, 4)}")
        en.append(f"Negated: {', '.join(a.negated[:4])}")
    if flags:
        zh.append("危险信号：" + "；".join(f"{_FLAG_NAMES[c][0]}（{h.evidence}）" for c, h in flags.items()))
        en.append("Red flags: " + "; ".join(f"{_FLAG_NAMES[c][1]} ({h.evidence})" for c, h in flags.items()))
    if measured:
        zh.append("体征：" + "，".join(f"{k}={v:g}" for k, v in measured.items()))
        en.append("Vitals: " + ", ".join(f"{k}={v:g}" for k, v in measured.items()))
    who_zh, who_en = [], []
    if child:
        who_zh.append(f"儿童{f'（{age:g}岁）' if age is not None else ''}")
        who_en.append(f"child{f' ({age:g} y)' if age is not None else ''}")
    if pregnant:
        who_zh.append("孕期")
        who_en.append("pregnant")
    if who_zh:
        zh.append("人群：" + "、".join(who_zh))
        en.append("Population: " + ", ".join(who_en))
    zh.append(f"建议：{d.name}，{level}级（{lv.name}，{'立即' if level == 1 else f'≤{lv.max_wait_minutes}分钟'}）")
    en.append(f"Suggested: {d.name_en}, level {level} ({lv.name_en})")
    zh.extend(messages)
    en.extend(messages_en)
    return "。".join(zh) + "。", ". ".join(en) + "."
