"""The de-identification API: :func:`detect` and :func:`mask`."""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable
from typing import Literal

from .lexicon import medical_regex, place_regex, surnames
from .model import lexicon_spans, load_tagger
from .models import ADDRESS, AGE, DATE, PERSON, Entity, MaskResult
from .patterns import find_structured
from .pseudonym import age_surrogate, pseudonym, shift_date
from .rules import _NOT_GIVEN, PRIO_MODEL, PRIO_NAME_LABEL, find_addresses, find_names, in_role_word

Span = tuple[str, int, int, int]
Mode = Literal["tag", "pseudonym"]

# A name or place directly followed by one of these is an eponym or a disease name
# (唐氏综合征, 川崎病, 日本脑炎), not an identifier.  病 is excluded before words such as 病情.
_EPONYM_SUFFIX = re.compile(
    r"氏|综合[征症]|病(?![情史人房区历程假重危愈床友逝故号员患休例态灶变理因种位])|症(?!状)|瘤|菌|"
    r"[二三四五]联[征症]|征(?![求得询集兆])|反射|试验|现象|小体|细胞|病毒|疗法|手法|汤|丸|散(?!步)|膏|"
    r"[脑肝肾心肺胃肠]炎|热(?![情心爱烈闹])|出血热|斑疹|囊肿|畸形|骨折|分级|分期|评分|量表|定律|体征|点(?![钟滴])"
)
_MODEL_TYPES = {"PER": PERSON, "LOC": ADDRESS}
_MIN_MODEL_LEN = 2
# Characters of disease and anatomy words that do not occur in names or place names.
_MEDICAL_CHARS = frozenset(
    "炎疝癌瘤肿痛疹症病伤损梗塞栓痿瘘溃疡脓菌毒腺膜囊肌髓脑肺肾肝胃肠脏腔尿便咳痰疮疖癣痔瘫痪痹疸疱痂聋盲哑"
    "疟痢瘀糜腐烂折痉挛萎缩増增殖肥硬钙纤维积液衰竭畸缺裂孔瓣椎颅骨肋胫腓桡尺肱锁"
)
# Model spans must be Han (with the middle dot of transliterated names) or whole capitalised words.
_HAN_NAME = re.compile(r"[\u4e00-\u9fff·•]+|[A-Z][a-z]+(?:[ -][A-Z][a-z]+)*")
_LEAD_STOP = frozenset("因于在是的了和与及或从到为由被把对给让请诉有无不未已曾该其此这那个位名岁患者等伴并后前行经")


_NOT_GIVEN_SET = frozenset(_NOT_GIVEN)
_COMPOUND = frozenset(surnames()[1])
# After a full name comes punctuation or a word such as 已/诉/的 — not more name characters.
_NAME_FOLLOW = frozenset("，。、；;,.\n （(）)：:！!？?" + _NOT_GIVEN + "之诉")


def _model_spans(
    text: str, surname_chars: frozenset[str], meds: list[tuple[int, int]], places: list[tuple[int, int]]
) -> Iterable[Span]:
    tagger = load_tagger()
    if tagger is None:
        return
    n = len(text)
    for typ, start, end, _conf in tagger.spans(text, meds, places):
        # drop a leading function word the tagger pulled in (因皮..., 于...)
        while end - start > _MIN_MODEL_LEN and text[start] in _LEAD_STOP and text[start + 1] in surname_chars:
            start += 1
        surface = text[start:end]
        if end - start < _MIN_MODEL_LEN or _HAN_NAME.fullmatch(surface) is None:
            continue
        if surface[0].isascii() and (
            (start > 0 and text[start - 1].isalpha()) or (end < n and text[end].isascii() and text[end].isalpha())
        ):
            continue  # part of a longer Latin word
        if surface[-1] == "号" or any(c in _MEDICAL_CHARS for c in surface):
            continue
        if typ == "LOC" and len(surface) == 2 and surface[1] in "区市县镇乡村街道路":
            continue  # 动区, 街道: half a word plus an admin suffix is not a place name
        if typ == "PER" and surface[0] in surname_chars and end < n and end - start <= 2 + (surface[:2] in _COMPOUND):
            # the tagger often stops one short on unseen given names: take one more plausible character
            nxt = text[end]
            if (
                "\u4e00" <= nxt <= "\u9fff"
                and nxt not in _NOT_GIVEN_SET
                and nxt not in _MEDICAL_CHARS
                and (end + 1 >= n or text[end + 1] in _NAME_FOLLOW)
            ):
                end += 1
        yield _MODEL_TYPES[typ], start, end, PRIO_MODEL


def _protect_medical(text: str, cands: list[Span], meds: list[tuple[int, int]]) -> list[Span]:
    """Drop names/places that start inside a medical term; cut those that run into one."""
    med_starts = [s for s, _ in meds]
    kept: list[Span] = []
    for typ, start, end, prio in cands:
        if typ not in (PERSON, ADDRESS):
            kept.append((typ, start, end, prio))
            continue
        i = bisect.bisect_right(med_starts, start) - 1
        if i >= 0 and meds[i][1] > start and prio < PRIO_NAME_LABEL:
            continue  # the candidate begins inside a medical term
        j = bisect.bisect_right(med_starts, start)
        if j < len(meds) and meds[j][0] < end:
            end = meds[j][0]  # stop before the medical term that follows
            if end - start < 2:
                continue
        if typ == PERSON and prio < PRIO_NAME_LABEL and in_role_word(text, start):
            continue
        if prio < PRIO_NAME_LABEL and _EPONYM_SUFFIX.match(text, end):
            continue
        kept.append((typ, start, end, prio))
    return kept


def _merge_addresses(cands: list[Span]) -> list[Span]:
    """Join overlapping or touching address pieces (rule + model) into one span."""
    addrs = sorted((c for c in cands if c[0] == ADDRESS), key=lambda c: c[1])
    others = [c for c in cands if c[0] != ADDRESS]
    merged: list[list] = []
    for _, start, end, prio in addrs:
        if merged and start <= merged[-1][2]:
            merged[-1][2] = max(merged[-1][2], end)
            merged[-1][3] = max(merged[-1][3], prio)
        else:
            merged.append([ADDRESS, start, end, prio])
    return others + [tuple(m) for m in merged]  # type: ignore[misc]


def _resolve(cands: list[Span]) -> list[tuple[str, int, int]]:
    """Keep the highest-priority, then longest, candidate wherever candidates overlap."""
    order = sorted(cands, key=lambda c: (-c[3], -(c[2] - c[1]), c[1]))
    starts: list[int] = []
    ends: list[int] = []
    chosen: list[tuple[str, int, int]] = []
    for typ, start, end, _ in order:
        if end <= start:
            continue
        i = bisect.bisect_right(starts, start)
        if i > 0 and ends[i - 1] > start:
            continue
        if i < len(starts) and starts[i] < end:
            continue
        starts.insert(i, start)
        ends.insert(i, end)
        chosen.insert(i, (typ, start, end))
    return chosen


def detect(text: str) -> list[Entity]:
    """Identifiers in ``text`` sorted by position, non-overlapping."""
    if not text:
        return []
    cands: list[Span] = list(find_structured(text))
    # lexicon matches are computed once and shared by the rules, the tagger and the filter
    meds = lexicon_spans(text, medical_regex())
    places = lexicon_spans(text, place_regex())
    cands.extend(find_addresses(text, {s for s, _ in places}))
    cands.extend(find_names(text))
    cands.extend(_model_spans(text, surnames()[0], meds, places))
    cands = _protect_medical(text, cands, meds)
    cands = _merge_addresses(cands)
    return [Entity(typ, s, e, text[s:e]) for typ, s, e in _resolve(cands)]


def _replacement(entity: Entity, mode: Mode, key: bytes | None, date_shift_days: int) -> str:
    if mode == "tag":
        return f"[{entity.type}]"
    assert key is not None
    if entity.type == DATE:
        shifted = shift_date(entity.text, date_shift_days)
        return shifted if shifted is not None else f"[{DATE}]"
    if entity.type == AGE:
        return age_surrogate(entity.text)
    return pseudonym(entity.type, entity.text, key)


def apply(text: str, entities: list[Entity], *, mode: Mode, key: bytes | None, date_shift_days: int) -> str:
    """Replace ``entities`` (sorted, non-overlapping) in ``text``."""
    parts: list[str] = []
    pos = 0
    for ent in entities:
        parts.append(text[pos : ent.start])
        parts.append(_replacement(ent, mode, key, date_shift_days))
        pos = ent.end
    parts.append(text[pos:])
    return "".join(parts)


def mask(
    text: str,
    *,
    mode: Mode = "tag",
    key: bytes | None = None,
    date_shift_days: int = 0,
) -> MaskResult:
    """De-identify ``text``.

    ``mode="tag"`` writes ``[PERSON]``, ``[PHONE]`` ...; ``mode="pseudonym"`` writes keyed
    pseudonyms (``key`` required, one per export), shifts dates by ``date_shift_days`` and
    reports ages over 89 as ≥90.
    """
    if mode not in ("tag", "pseudonym"):
        raise ValueError("mode must be 'tag' or 'pseudonym' / 模式必须为 tag 或 pseudonym")
    if mode == "pseudonym" and not key:
        raise ValueError("pseudonym mode needs a key / 假名模式需要密钥")
    entities = detect(text)
    return MaskResult(apply(text, entities, mode=mode, key=key, date_shift_days=date_shift_days), entities)


_BATCH_SEP = "\x00\x00"  # the tagger pads texts with code 0, so joined texts score as separate ones
_BATCH_CHARS = 1 << 20


def detect_many(texts: list[str]) -> list[list[Entity]]:
    """:func:`detect` for many texts at once (same results, less per-call overhead).

    Short texts are joined with a separator no recogniser crosses and scanned together;
    an entity that would span two texts is impossible by construction and is dropped if seen.
    """
    results: list[list[Entity]] = [[] for _ in texts]
    i = 0
    while i < len(texts):
        j, size = i, 0
        while j < len(texts) and (j == i or size + len(texts[j]) <= _BATCH_CHARS):
            size += len(texts[j]) + len(_BATCH_SEP)
            j += 1
        offsets: list[int] = []
        pos = 0
        for t in texts[i:j]:
            offsets.append(pos)
            pos += len(t) + len(_BATCH_SEP)
        joined = _BATCH_SEP.join(texts[i:j])
        for ent in detect(joined):
            k = bisect.bisect_right(offsets, ent.start) - 1
            base = offsets[k]
            if ent.end - base <= len(texts[i + k]):
                results[i + k].append(Entity(ent.type, ent.start - base, ent.end - base, ent.text))
        i = j
    return results
