"""De-identification engine internals: tagger decoding, feature paths, medical-term protection,
name propagation and the place gazetteer (exact values)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from xinglin.privacy.deid import detect, detect_many
from xinglin.privacy.deid import model as tagger_model
from xinglin.privacy.deid.lexicon import icd_names, medical_terms, term_index
from xinglin.privacy.deid.service import _resolve


def spans(text: str) -> list[tuple[str, str]]:
    return [(e.type, text[e.start : e.end]) for e in detect(text)]


# --- decoding ----------------------------------------------------------------------------------
_O = 5.0
_SCORES = np.array(
    [
        # O, B-PER, I-PER, B-LOC, I-LOC
        [0.5, 0.0, -5, -5, -5],  # 0: an entity only under the generous offsets
        [0.5, -5, 0.0, -5, -5],  # 1: likewise -> span 0-2 has no strong character: dropped
        [_O, -5, -5, -5, -5],  # 2: O
        [0.5, 0.0, -5, -5, -5],  # 3: weak PER
        [0.5, -5, -5, -5, 1.0],  # 4: strong LOC
        [0.5, -5, 0.2, -5, -5],  # 5: weak PER -> one span 3-6, PER by summed margin (5 - 6 + 5.2)
        [_O, -5, -5, -5, -5],  # 6: O
        [0.5, -5, -5, 1.0, -5],  # 7: strong LOC alone -> span 7-8, LOC
    ],
    dtype=np.float32,
)


def test_hysteresis_decoding_needs_one_strong_character_and_types_by_summed_score() -> None:
    loose = np.array([0, 1, 1, 1, 1], dtype=np.float32)
    strict = np.zeros(5, dtype=np.float32)
    assert tagger_model.decode(_SCORES, loose, strict) == [("PER", 3, 6), ("LOC", 7, 8)]
    # with the strict offsets equal to the generous ones every run counts
    assert tagger_model.decode(_SCORES, loose, loose) == [("PER", 0, 2), ("PER", 3, 6), ("LOC", 7, 8)]
    # nothing above O
    assert tagger_model.decode(_SCORES, -10 * loose, strict) == []


def test_short_and_long_feature_paths_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    tagger = tagger_model.load_tagger()
    assert tagger is not None
    text = "患者王建国，男，65岁，住杭州市西湖区文三路88号。Dr. Smith 随访·阿依古丽𠀀。" * 40
    short = tagger.scores(text)
    monkeypatch.setattr(tagger_model, "_SHORT", 0)
    monkeypatch.setattr(tagger_model, "_CHUNK", 333)  # several chunks, boundaries inside words
    long = tagger.scores(text)
    np.testing.assert_allclose(short, long, rtol=0, atol=1e-4)
    assert tagger_model.features(text).shape == (len(text), len(tagger_model.TEMPLATES))


def test_joined_texts_score_exactly_as_alone() -> None:
    """detect_many joins texts with code-0 separators as wide as the widest dilation: no text's
    scores may depend on its neighbours (the network's reach is wider than the separator)."""
    from xinglin.privacy.deid.service import _BATCH_SEP

    tagger = tagger_model.load_tagger()
    assert tagger is not None
    assert tagger.reach > len(_BATCH_SEP) >= max(d for _, _, d in tagger.convs)
    texts = ["患者王建国，男，65岁。", "住杭州市西湖区文三路88号", "李", "", "欧阳秀兰陪同就诊，诊断帕金森病。"]
    joined = tagger.scores(_BATCH_SEP.join(texts))
    pos = 0
    for text in texts:
        np.testing.assert_allclose(joined[pos : pos + len(text)], tagger.scores(text), rtol=0, atol=1e-5)
        pos += len(text) + len(_BATCH_SEP)


def test_numpy_convolution_matches_the_training_layout() -> None:
    """A conv weight exported as (tap, in, out) reads position p + (tap - 1) * dilation, as
    ``torch.nn.Conv1d`` (out, in, tap) with padding=dilation does; checked with a plain loop."""
    rng = np.random.default_rng(0)
    dim, n, d = 4, 11, 2
    w = rng.standard_normal((3, dim, dim)).astype(np.float32)
    tagger = tagger_model.Tagger(
        embed=np.zeros((1 << tagger_model.HASH_BITS, dim), dtype=np.float32),
        embed_bias=np.ones(dim, dtype=np.float32),
        convs=((w, np.zeros(dim, dtype=np.float32), d),),
        out_w=np.eye(dim, tagger_model.N_TAGS, dtype=np.float32),
        out_b=np.zeros(tagger_model.N_TAGS, dtype=np.float32),
        tag_bias=np.zeros(tagger_model.N_TAGS, dtype=np.float32),
        seed_bias=np.zeros(tagger_model.N_TAGS, dtype=np.float32),
    )
    text = "王" * n
    got = tagger.scores(text)
    h = np.ones((n, dim), dtype=np.float32)
    z = np.zeros((n, dim), dtype=np.float32)
    for p in range(n):
        for tap in range(3):
            q = p + (tap - 1) * d
            if 0 <= q < n:
                z[p] += h[q] @ w[tap]
    want = h + np.maximum(z, 0)
    np.testing.assert_allclose(got[:, :dim], want[:, : tagger_model.N_TAGS], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # unseen names beside eponyms that begin with a surname character (唐, 霍, 川, 桥)
        (
            "唐氏综合征筛查低风险，孕妇邝美玲，住广州市天河区林和西路9号。",
            [("PERSON", "邝美玲"), ("ADDRESS", "广州市天河区林和西路9号")],
        ),
        ("霍奇金淋巴瘤化疗后，患者孟繁星复查。", [("PERSON", "孟繁星")]),
        ("患儿川崎病，母亲霍丽萍代诉发热5天。", [("PERSON", "霍丽萍")]),
        ("主治医师诸葛明会诊：考虑桥本甲状腺炎，建议复查。", [("PERSON", "诸葛明")]),
        ("患者欧阳秀兰既往帕金森病。", [("PERSON", "欧阳秀兰")]),
    ],
)
def test_neural_tagger_names_next_to_eponyms(text: str, expected: list[tuple[str, str]]) -> None:
    assert spans(text) == expected


def test_base_columns() -> None:
    base, closed = tagger_model._prepare("Ab王·5，", [], [])
    pad = tagger_model._PAD
    col = tagger_model._BASES.index
    # classes: Latin 3, Han 1, other 5, digit 2; padding 0
    assert base[pad : pad + 6, col("k")].tolist() == [3, 3, 1, 5, 2, 5]
    # case folded, digits collapsed to "0"
    assert base[pad : pad + 6, col("c")].tolist() == [ord("a"), ord("b"), ord("王"), ord("·"), ord("0"), ord("，")]
    assert base[pad : pad + 6, col("u")].tolist() == [1, 0, 0, 0, 0, 0]
    assert base[pad : pad + 6, col("l")].tolist()[2] & 1 == 1  # 王 is a surname
    # the classes of the ±2 window, packed 3 bits each (k-2 lowest)
    assert base[pad, col("w")] == 0 + (0 << 3) + (3 << 6) + (3 << 9) + (1 << 12)
    # O without looking: the digit and the comma; letters, Han and the name dot stay open
    assert closed.tolist() == [False, False, False, False, True, True]


def test_resolve_prefers_priority_then_length() -> None:
    cands = [("PERSON", 0, 3, 40), ("ADDRESS", 2, 6, 58), ("PERSON", 6, 8, 40), ("DATE", 7, 9, 70)]
    assert _resolve(cands, 10) == [("ADDRESS", 2, 6), ("DATE", 7, 9)]


# --- medical-term protection ---------------------------------------------------------------------
def test_icd_names_join_the_protection_lexicon() -> None:
    names = icd_names()
    assert len(names) > 10_000
    assert "吕弗勒综合征" in names
    terms, prefixes = term_index()
    assert "吕弗勒综合征" in terms and "帕金森病" in terms
    assert len(terms) == len(medical_terms())
    assert prefixes["帕金"][0] >= len("帕金森综合征")


@pytest.mark.parametrize(
    "text",
    [
        "诊断：小脑发育不良性神经节细胞瘤(莱尔米特-杜克洛)。",
        "既往有史密斯-莱尔米-奥皮茨综合征病史。",
        "既往有赫日曼斯基-普德拉克综合征病史。",
        "患者在工业和建筑区域跌倒受伤。",
        "诊断：日本脑炎。",
        "继发性肺结核，涂阳培阳。",
    ],
)
def test_medical_phrases_stay_readable(text: str) -> None:
    assert spans(text) == []


# --- names and places ----------------------------------------------------------------------------
def test_a_name_found_once_is_masked_everywhere_in_the_text() -> None:
    text = "患者姓名：高兴。高兴今日复查。"
    assert spans(text) == [("PERSON", "高兴"), ("PERSON", "高兴")]


def test_name_propagation_stays_inside_one_text_of_a_batch() -> None:
    texts = ["患者姓名：高兴。", "今天他很高兴。"]
    got = detect_many(texts)
    assert [[(e.type, texts[k][e.start : e.end]) for e in ents] for k, ents in enumerate(got)] == [
        [("PERSON", "高兴")],
        [],
    ]
    assert got == [detect(t) for t in texts]


@pytest.mark.parametrize(
    ("text", "unprotected"),
    [
        ("既往有埃及血吸虫病病史。", [("ADDRESS", "埃及")]),
        ("既往有鄂木斯克出血热病史。", [("PERSON", "鄂木斯")]),
        ("既往有沙门菌伦敦血清型肠炎病史。", [("ADDRESS", "伦敦")]),
    ],
)
def test_icd_derived_names_protect_what_the_tagger_would_mask(
    text: str, unprotected: list[tuple[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert spans(text) == []
    from xinglin.privacy.deid import service

    monkeypatch.setattr(service, "term_index", lambda: (frozenset(), {}))
    assert spans(text) == unprotected


def test_substances_are_cut_from_icd_poisoning_names() -> None:
    from xinglin.privacy.deid.lexicon import substances

    assert {"卡马西平", "雷米封", "利眠宁"} <= set(substances())
    assert spans("既往有卡马西平药物反应病史。") == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # countries count as places (see service.py: what counts as ADDRESS)
        # (the recall-first decoding joins two places and the 和 between them into one span)
        ("患者近期去过泰国和日本。", [("ADDRESS", "泰国和日本")]),
        # the middle dot of a transliterated name is masked with it
        ("主演克里斯·莫瑞斯出席了发布会。", [("PERSON", "克里斯·莫瑞斯")]),
        # a Latin name inside Chinese text; not English words, not capitals
        ("影评人rayn认为这部电影很好。", [("PERSON", "rayn")]),
        ("MRN: A1234567 seen 5 Mar 2024", [("RECORD_NUMBER", "A1234567"), ("DATE", "5 Mar 2024")]),
        # a name found by its title is masked again where nothing marks it
        ("护士长张晓燕巡视病房，张晓燕建议卧床。", [("PERSON", "张晓燕"), ("PERSON", "张晓燕")]),
        # a kind of place, not a named one
        ("建议社区医院随访。", []),
    ],
)
def test_names_and_places(text: str, expected: list[tuple[str, str]]) -> None:
    assert spans(text) == expected


def test_matcher_finds_what_the_trie_regex_finds() -> None:
    from xinglin.privacy.deid.lexicon import (
        Matcher,
        medical_regex,
        medical_spans,
        place_regex,
        place_spans,
        trie_pattern,
    )

    text = "既往帕金森病、唐氏综合征，2019年去过上海市、日本，住在上海" * 20  # long: the vectorised path
    for words in (["上海", "上海市", "日本"], ["帕金森", "帕金森病", "唐氏综合征"]):
        rx = re.compile(trie_pattern(words))
        assert Matcher(words).spans(text) == [m.span() for m in rx.finditer(text)]
        assert Matcher(words).spans(text[:40]) == [m.span() for m in rx.finditer(text[:40])]
    assert Matcher(["上海", "上海市"]).spans("住在上海") == [(2, 4)]  # a longer word past the end
    assert medical_spans(text) == [m.span() for m in medical_regex().finditer(text)]
    assert place_spans(text) == [m.span() for m in place_regex().finditer(text)]
    with pytest.raises(ValueError):
        Matcher(["上"])


def test_recurring_name_stems_are_cut_to_the_shared_name() -> None:
    from xinglin.privacy.deid.service import _common_name_stems

    text = "张晓燕巡视，张晓燕建议；李明华和李明亮；欧阳秀兰与欧阳秀英"
    found = [
        ("PERSON", 0, 4, 40),  # 张晓燕巡
        ("PERSON", 6, 10, 40),  # 张晓燕建
        ("PERSON", 12, 15, 40),  # 李明华: three characters, two people
        ("PERSON", 16, 19, 40),  # 李明亮
        ("PERSON", 20, 24, 40),  # 欧阳秀兰: compound surname, two people
        ("PERSON", 25, 29, 40),  # 欧阳秀英
        ("ADDRESS", 29, 30, 40),
    ]
    got = _common_name_stems(text, found)
    assert [text[s:e] for _, s, e, _ in got] == ["张晓燕", "张晓燕", "李明华", "李明亮", "欧阳秀兰", "欧阳秀英", ""]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # the verb in front of a place is not part of it
        ("家住四川省绵阳市三台县芦溪镇青龙村5组。", [("ADDRESS", "四川省绵阳市三台县芦溪镇青龙村5组")]),
        # a year after a card number belongs to the date, not to the card's four-digit groups
        ("医保卡号：H87654321 2024年3月5日", [("INSURANCE_NUMBER", "H87654321"), ("DATE", "2024年3月5日")]),
        ("医保卡号：7826 6367 8867 1873。", [("INSURANCE_NUMBER", "7826 6367 8867 1873")]),
    ],
)
def test_span_edges(text: str, expected: list[tuple[str, str]]) -> None:
    assert spans(text) == expected
