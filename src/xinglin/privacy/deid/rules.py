"""Context rules for person names and street addresses (Chinese and English).

The statistical model (``model.py``) finds names and places in running text; these rules add
the cases where the context leaves no doubt (a label such as 姓名：, a title such as 医生, an
address chain ending in 号/栋/单元/室) so they are found even when the model is unsure.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache
from typing import NamedTuple

from .lexicon import surnames, trie_pattern
from .models import ADDRESS, PERSON

Span = tuple[str, int, int, int]

PRIO_NAME_LABEL = 60
PRIO_NAME_TITLE = 55
PRIO_ADDRESS = 58
PRIO_MODEL = 40

# Characters that never belong to a given name: function words, titles, clinical words.
# (生 长 志 成 月 治 和 可 are left out although titles and everyday words use them: 春生, 长江, 志强, 建成,
# 秀月, 治国, 和平, 可欣 are given names.)
_NOT_GIVEN = (
    "的了在是于与及或从到往向为由被把对给让请去诉有无不未已曾因该其此这那个位名岁男女患者病症医护士"
    "主任教授院先女老师同阿姨之等说称示签字意拒要求入出住转术后前时内外上下左右床科诊班级值"
    "管理室楼号区县市省路街巷镇村岁日年今昨近既诉述查体伴并且但也都又将会能应予行给服用经常"
    "自称告知已将测量做完再就还没代"
)
# Python's re has no class subtraction: spell the class as a negative lookahead per character.
_GIVEN = rf"(?:(?![{_NOT_GIVEN}])[\u4e00-\u9fff])"

_TITLES = (
    "主任医师 副主任医师 主治医师 住院医师 医师 医生 大夫 护士长 护士 护师 主管护师 主任 副主任 教授 副教授 "
    "院长 副院长 科长 药师 技师 治疗师 先生 女士 小姐 老师 同志 阿姨 叔叔 奶奶 爷爷 老人 师傅 同学 "
    "老先生 老太太 太太 博士 之子 之女 之父 之母 之妻 之夫 家属 签字 签名 本人"
)
_ROLE_WORDS = (
    "管床 主管 主治 值班 经治 责任 带教 门诊 接诊 首诊 上级 住院 进修 实习 规培 家庭 社区 乡村 专科 当班 "
    "主班 夜班 白班 护理 康复 营养 心理 麻醉 手术 急诊 医院 本院 我院 该院 外院 他院 全科 专家 中医 西医 "
    "眼科 内科 外科 儿科 妇科 产科 主刀 助产 检验 影像 放射 超声 药房 病房 病区 科室 高年资 年轻 女性 男性 "
    "值守 随访 首席 资深 明星 分管 科主任 主任 副主任 包管 巡回 器械 教学 带组 组长 该名 这位 那位 一位 两位"
)
_NAME_LABELS = (
    "患者姓名 病人姓名 家属姓名 姓名 联系人姓名 紧急联系人 联系人 监护人 法定代理人 代理人 委托人 签名 签字 "
    "医师签名 医生签名 护士签名 患者签名 家属签名 记录人 记录者 报告人 报告医师 报告医生 审核人 审核医师 检验者 "
    "检验人 送检医生 送检医师 申请医生 申请医师 开单医生 开单医师 主治医师 经治医师 主管医生 主管医师 主管护士 "
    "责任护士 管床医生 住院医师 上级医师 主任医师 主刀医师 主刀 助手 麻醉医师 护士 医生 医师 配偶 丈夫 妻子 "
    "儿子 女儿 父亲 母亲 患者 病人 家属 陪同人 授权人 被授权人 见证人 谈话医师 谈话医生 接诊医生 会诊医师"
)


# Surname characters that are also everyday function words: alone before a title they are
# not a name (经护士测量, 于医生处).
_BARE_SURNAME_STOP = "经于和向从时常应全平明成计解双关通相查后那能都及由与同"
# 请/由/找 + 王医生 is fine, but 上级/高年资 + 医生 were caught as roles; a bare surname after
# a Han numeral or 某 is not a name either (一位医生, 某医生).
_BARE_LEFT_STOP = "一二三四五六七八九十几某每各该此这那"
_STRONG_LABELS = (
    "患者姓名 病人姓名 家属姓名 姓名 联系人姓名 紧急联系人 联系人 监护人 法定代理人 代理人 委托人 签名 签字 "
    "医师签名 医生签名 护士签名 患者签名 家属签名 记录人 记录者 报告人 审核人 审核者 检验者 检验人 授权人 被授权人 "
    "见证人 受检者 受检人 就诊人 陪同人 报告医师 报告医生 审核医师 送检医生 送检医师 申请医生 申请医师 开单医生 "
    "开单医师 主治医师 经治医师 主管医生 主管医师 主管护士 责任护士 管床医生 住院医师 上级医师 主刀医师 麻醉医师 "
    "谈话医师 谈话医生 接诊医生 会诊医师 记录医师 记录医生 操作者 操作医师 检查医师 执行人 核对人 收件人 寄件人"
)


@cache
def surname_pattern() -> str:
    """Single or compound surname, written to begin with a character set.

    ``[王欧...](?:(?<=欧)阳|(?<=司)[马徒]...)?`` rather than ``(?:欧阳|...|[王...])``: a pattern
    that starts with a set lets ``re`` scan ahead in C instead of trying every position.
    """
    single, compound = surnames()
    by_first: dict[str, list[str]] = {}
    for word in compound:
        by_first.setdefault(word[0], []).append(word[1:])
    firsts = "".join(sorted(single | set(by_first)))
    tails = "|".join(f"(?<={re.escape(f)}){trie_pattern(rest)}" for f, rest in sorted(by_first.items()))
    return f"[{firsts}](?:{tails})?"


_LEFT_TITLES = (
    "主任医师 副主任医师 主治医师 住院医师 医师 医生 大夫 护士长 护士 护师 主任 教授 药师 技师 患者 病人 患儿 "
    "家属 丈夫 妻子 儿子 女儿 父亲 母亲 配偶 爱人 老伴 其子 其女 其夫 其妻 孙子 孙女 陪同人 联系人 监护人 "
    "侄子 侄女 外甥 外甥女 儿媳 女婿 兄弟 姐妹 哥哥 姐姐 弟弟 妹妹 之子 之女 之妻 之夫 老人 兹有 随访 回访 病友 "
    "司机 子女 长子 长女 次子 次女 姓名 汇报"
)


class _NameRegexes(NamedTuple):
    title: re.Pattern[str]
    before_title: re.Pattern[str]
    label: re.Pattern[str]
    strong: re.Pattern[str]
    sex: re.Pattern[str]
    roles: re.Pattern[str]
    left: re.Pattern[str]
    says: re.Pattern[str]
    bed: re.Pattern[str]
    speaker: re.Pattern[str]


@cache
def _name_regexes() -> _NameRegexes:
    sur = surname_pattern()
    titles = trie_pattern(_TITLES.split())
    roles = trie_pattern(_ROLE_WORDS.split())
    labels = trie_pattern(_NAME_LABELS.split())
    strong = trie_pattern(_STRONG_LABELS.split())
    # 王建国医生 / 张主任 / 欧阳明之子: the title fixes where the name ends.
    # Starts with the surname itself so ``re`` can skip ahead in C; the role-word and
    # bare-surname checks run in Python on the few matches.
    # Titles are rarer than surname characters: find the title, then read the name backwards.
    title_rx = re.compile(titles)
    before_title_rx = re.compile(rf"(?:{sur}{_GIVEN}{{1,2}}|{sur})\Z")
    # 姓名：王建国 / 家属：欧阳娜娜 — a label and a colon, then a short name.
    end = rf"(?=[^\u4e00-\u9fff]|$|{titles})"
    label_rx = re.compile(rf"({labels})\s*[:：]\s*({sur}{_GIVEN}{{1,2}}){end}")
    # after a strong label any short run of Han characters is a name (阿依古丽, 买买提·艾力)
    strong_rx = re.compile(
        rf"(?:{strong})\s*[:：]\s*([\u4e00-\u9fff]{{2,5}}(?:[·•][\u4e00-\u9fff]{{2,6}})?)(?=[^\u4e00-\u9fff]|$)"
    )
    # 王建国，男，65岁 — sex and age right after a name.
    sex_rx = re.compile(rf"({sur}{_GIVEN}{{1,2}})(?=[，,、\s（(]*[男女][，,、\s）)])")
    # 护士张敏， / 患者欧阳娜娜。 — a title or kin word before, punctuation right after
    left_titles = trie_pattern(_LEFT_TITLES.split())
    # the name ends at punctuation or at a character that never belongs to a given name
    left_rx = re.compile(
        rf"(?:{left_titles})({sur}{_GIVEN}{{1,2}})(?=[，。、；;,.\s（(）)：:！!？?]|[{_NOT_GIVEN}]|电话|手机|来电|陪|$)"
    )
    # ，王建国诉腹痛 — a clause that starts with a name and a verb of saying
    says_rx = re.compile(rf"(?<=[，。；;,\s：:])({sur}{_GIVEN}{{1,2}})(?=诉|自诉|主诉|自述|述|称|反映|表示)")
    # 30床 许嘉懿 — a bed number, then the patient in it
    bed_rx = re.compile(rf"\d{{1,3}}\s*床\s*[:：]?\s*({sur}{_GIVEN}{{1,2}})(?=[^\u4e00-\u9fff]|$)")
    # 郝飞：今晚38床… — who speaks, at the start of a line of a chat or a ward round
    speaker_rx = re.compile(rf"(?:^|(?<=[\s。！？!?]))({sur}{_GIVEN}{{1,2}})[:：]", re.M)
    return _NameRegexes(
        title=title_rx,
        before_title=before_title_rx,
        label=label_rx,
        strong=strong_rx,
        sex=sex_rx,
        roles=re.compile(roles),
        left=left_rx,
        says=says_rx,
        bed=bed_rx,
        speaker=speaker_rx,
    )


_EN_NAME = r"[A-Z][a-z]+(?:['’-][A-Z]?[a-z]+)?"
EN_TITLE_RE = re.compile(rf"\b(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof|Nurse)\.?\s+({_EN_NAME}(?:\s+{_EN_NAME}){{0,2}})")
EN_LABEL_RE = re.compile(
    r"\b(?:Patient(?:\s+name)?|Name|Pt|Physician|Doctor|Nurse|Attending|Signed\s+by|Contact|Guardian"
    r"|Next\s+of\s+kin|Referred\s+by|Reported\s+by|Surgeon)\s*[:：]\s*"
    rf"({_EN_NAME}(?:\s+{_EN_NAME}){{0,2}})"
)


def in_role_word(text: str, start: int, roles_rx: re.Pattern[str] | None = None) -> bool:
    """True when ``text[start]`` begins or lies inside a role word such as 管床/值班/主治."""
    rx = roles_rx or _name_regexes().roles
    for back in range(0, 3):
        pos = start - back
        if pos < 0:
            break
        m = rx.match(text, pos)
        if m is not None and m.end() > start:
            return True
    return False


_WEAK_LABELS = frozenset({"患者", "病人", "家属"})
_SEX_AGE = re.compile(r"[，,、\s（(][男女][，,、\s）)]")


def find_names(text: str) -> Iterator[Span]:
    rxs = _name_regexes()
    title_rx, before_title_rx, sex_rx, roles_rx = rxs.title, rxs.before_title, rxs.sex, rxs.roles
    for rx in (rxs.left, rxs.says, rxs.bed, rxs.speaker):
        for m in rx.finditer(text):
            yield PERSON, m.start(1), m.end(1), PRIO_NAME_TITLE
    for m in rxs.strong.finditer(text):
        yield PERSON, m.start(1), m.end(1), PRIO_NAME_LABEL
    for m in rxs.label.finditer(text):
        # a patient label (患者：) may precede a disease name, so it stays below strong labels; staff and kin
        # labels (护士：, 丈夫：) are followed by people
        weak = m.group(1) in _WEAK_LABELS
        yield PERSON, m.start(2), m.end(2), PRIO_NAME_LABEL - 1 if weak else PRIO_NAME_LABEL
    for t in title_rx.finditer(text):
        end = t.start()
        m = before_title_rx.search(text, max(0, end - 4), end)
        if m is None:
            continue
        start = m.start()
        if end - start > 1 and text[start] in _BARE_SURNAME_STOP:
            # 经李明医生: 经 is a preposition here, the name starts at 李
            m2 = before_title_rx.search(text, start + 1, end)
            if m2 is not None:
                start = m2.start()
        if in_role_word(text, start, roles_rx):
            if end - start > 1 and not in_role_word(text, end - 1, roles_rx):
                start = end - 1  # 值班李医生: 班 ends the role, 李 alone is the name
            else:
                continue  # 管床医生, 值班护士: a role, not a name
        if end - start == 1 and (
            text[start] in _BARE_SURNAME_STOP or (start > 0 and text[start - 1] in _BARE_LEFT_STOP)
        ):
            continue
        yield PERSON, start, end, PRIO_NAME_TITLE
    for a in _SEX_AGE.finditer(text):
        # look back from "，男，65岁" for the name it follows
        for m in sex_rx.finditer(text, max(0, a.start() - 6), a.end()):
            yield PERSON, m.start(1), m.end(1), PRIO_NAME_TITLE
    if "." in text or ":" in text or "Dr" in text or "M" in text:
        for rx in (EN_TITLE_RE, EN_LABEL_RE):
            for m in rx.finditer(text):
                yield PERSON, m.start(1), m.end(1), PRIO_NAME_TITLE


# --- addresses --------------------------------------------------------------------------------
# Characters that do not occur inside a place-name component: they cut a run of Han characters
# so the address starts after 家住/来自/位于 and not at the beginning of the sentence.
_NOT_PLACE = (
    "的了在是于与及或从到往住址为由被把对给让请找去诉有无不未已曾因该其此这那个位名岁患者医护诊断治疗检查术"
    "既并且但而也都又将要会能可自我您他她它们今昨次现"
)
_P = rf"(?:(?![{_NOT_PLACE}])[\u4e00-\u9fff])"
_PN = rf"(?:(?![{_NOT_PLACE}])[\u4e00-\u9fff0-9])"
_CN_NUM = "零〇一二三四五六七八九十百"
_ADMIN = r"(?:(?:壮族|回族|维吾尔)?自治区|特别行政区|自治州|自治县|地区|省|市|区|县|旗|盟|镇|乡|街道|村|屯|社区|组)"
# 江南大道中12号: a road's middle/east part written before the number (Guangzhou style)
_ROAD = r"(?:大街|大道|路|街|巷|弄|胡同|里|道)(?:[东西南北中]段|[一二三四五六七八九]段|[东西南北中](?=\d))?"
_ESTATE = (
    r"(?:小区|花园|公寓|大厦|广场|家园|新村|新城|山庄|名苑|苑|府|公馆|华庭|雅居|别墅|宿舍|大院|中心|商城|村|庄|"
    r"城|郡|邸|湾|园|居|庭|轩|阁|墅)"
)
_NUM = rf"(?:\d+|[{_CN_NUM}]+)"
_HOUSE = rf"(?:{_NUM}(?:-{_NUM})?(?:号院|号(?!楼)|號)(?:之{_NUM})?)"
_BLDG = rf"(?:(?:{_NUM}|[A-Za-z])(?:号楼|栋|幢|座|楼|期|区))"
# 2单元 / 5门, and the flat number that may follow without 室 (5门1450)
_UNIT = rf"(?:{_NUM}(?:单元|门)(?:\d{{2,4}}(?![0-9室房户]))?)"
_ROOM = r"(?:\d+(?:室|房|户)|\d+-\d+(?:-\d+)?(?:室)?)"
_GROUP = rf"(?:{_NUM}(?:组|队|社))"
# numbers, building/unit/room, and an estate name when a number follows it (…88号桂花城3栋…)
_TAIL = rf"(?:{_HOUSE}|{_BLDG}|{_UNIT}|{_ROOM}|{_GROUP}|{_P}{{1,8}}?{_ESTATE}(?=[0-9A-Za-z{_CN_NUM}]))*"
ADDRESS_RE = re.compile(
    "(?:"
    # a chain of administrative parts, then optionally roads, estates and numbers
    rf"(?:{_P}{{1,8}}?{_ADMIN}){{1,6}}(?:{_PN}{{1,12}}?{_ROAD})?(?:{_P}{{1,8}}?{_ESTATE})?{_TAIL}"
    # or a road with a house number
    rf"|{_PN}{{1,12}}?{_ROAD}(?:{_P}{{1,8}}?{_ESTATE})?(?:{_HOUSE}|{_BLDG}|{_UNIT}|{_ROOM}){_TAIL}"
    # or a named estate with building/unit/room
    rf"|{_P}{{1,8}}?{_ESTATE}(?:{_HOUSE}|{_BLDG}|{_UNIT}|{_ROOM}){_TAIL}"
    ")"
)
_ADMIN_TAIL = re.compile(_ADMIN + "$")
_ADDRESS_NUMBER = re.compile(rf"{_HOUSE}|{_BLDG}|{_UNIT}|{_ROOM}|{_GROUP}")
_ADMIN_PART = re.compile(rf"{_P}{{1,8}}?{_ADMIN}")
# Common words that end like an admin unit but are not places (病区, 城市, 社区医院 ...).
_FALSE_ADMIN = re.compile(
    r"^(?:病区|术区|市区|城区|郊区|地区|山区|灾区|景区|校区|园区|小区|社区|专区|盲区|脑区|肝区|心区|前区|后区|"
    r"城市|超市|上市|都市|夜市|股市|楼市|门市|本市|全市|该市|外市|本区|全区|该区|本县|全县|该县|本省|全省|外省|"
    r"该省|农村|乡村|山村|全村|本村|城乡|老乡|家乡|故乡|本镇|全镇|乡镇|城镇|分组|小组|治疗组|对照组|观察组|实验组)"
)
EN_ADDRESS_RE = re.compile(
    # Room 605, Building 8, No. 16 Keji Road, Futian District, Shenzhen
    r"(?:\b(?:Apt|Apartment|Unit|Suite|Room|Rm)\.?\s*#?\w+,\s*)?(?:\bBuilding\s+\w+,\s*)?(?:\bNo\.\s*)?"
    r"\b\d{1,5}\s+(?:[A-Z][a-z]+\s+){1,3}(?:Street|St|Road|Rd|Avenue|Ave|Lane|Ln|Boulevard|Blvd|Drive|Dr|Way|"
    r"Court|Ct|Place|Pl|Terrace|Highway|Hwy)\b\.?(?:,?\s*(?:Apt|Apartment|Unit|Suite|Room|Rm)\.?\s*#?\w+)?"
    r"(?:,\s*[A-Z][a-z]+\s+District)?"
    r"(?:,\s*[A-Z][a-z]+(?:\s+[A-Z][a-z]+)?(?:,\s*[A-Z]{2}\s+\d{5})?)?"
    # Xuhui District, Shanghai
    r"|\b[A-Z][a-z]+\s+District,\s*[A-Z][a-z]+\b"
)


# Anchors every Chinese address contains; the full address regex runs only in windows around
# them, which keeps it off most of a clinical note (the regex is costly at every Han character).
_ADDRESS_ANCHOR = re.compile(r"[省市区县旗盟镇乡村屯路街巷弄栋幢苑]|单元|胡同|大道|\d+(?:号|室)")
_ADDRESS_CUE = re.compile(
    r"(?:家庭住址|户籍地址|户籍地|户籍|籍贯|现住址|现住|住址|地址|家住|住在|居住地|居住|现居|来自|位于|寄往|出生地|老家|家在)[:：]?"
)
_WINDOW_BEFORE = 40
_WINDOW_AFTER = 40


def find_addresses(text: str, known_place_starts: set[int] | None = None) -> Iterator[Span]:
    """Street addresses.  A chain with one admin word (``北京市``) counts only for a known place."""
    windows: list[list[int]] = []
    for m in _ADDRESS_ANCHOR.finditer(text):
        lo, hi = max(0, m.start() - _WINDOW_BEFORE), m.end() + _WINDOW_AFTER
        if windows and lo <= windows[-1][1]:
            windows[-1][1] = hi
        else:
            windows.append([lo, hi])
    last_end = 0
    for lo, hi in windows:
        for m in ADDRESS_RE.finditer(text, max(lo, last_end), min(hi, len(text))):
            start, end = m.span()
            last_end = end
            cue = _ADDRESS_CUE.match(text, start, end)
            if cue is not None:
                start = cue.end()  # 户籍地河南省… -> 河南省…
            surface = text[start:end]
            parts = _ADMIN_PART.findall(surface)
            has_number = _ADDRESS_NUMBER.search(surface) is not None
            if not has_number:
                real_parts = [p for p in parts if not _FALSE_ADMIN.match(p)]
                if len(real_parts) < 2 and not (known_place_starts and start in known_place_starts):
                    continue
            if parts and _FALSE_ADMIN.match(parts[0]):
                # trim a leading non-place word such as 病区 from the chain
                start += len(parts[0])
                if start >= end:
                    continue
            yield ADDRESS, start, end, PRIO_ADDRESS
    if any(w in text for w in ("St", "Rd", "Ave", "Road", "Street", "Lane", "Dr", "Way", "Blvd", "District")):
        for m in EN_ADDRESS_RE.finditer(text):
            yield ADDRESS, m.start(), m.end(), PRIO_ADDRESS
