"""Small messy exports in the styles of several hospitals, written into a test's tmp_path."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

# Valid resident ID numbers (check characters computed by GB 11643)
ID_ZHANG = "44030519850312001X"  # male, 1985-03-12
ID_WANG = "110101199005170024"  # female, 1990-05-17
ID_CHEN = "320102197801011231"  # male, 1978-01-01

GBK_HEADER = "病人姓名,性别,出生日期,身份证号,联系电话,家庭住址,就诊日期,门诊诊断,检验项目,结果,单位,参考范围"
GBK_ROWS = [
    # row 2: traditional characters, stray spaces, +86 phone, Chinese date, glucose in mg/dL
    f"張 三 ,男,1985年3月12日,{ID_ZHANG},+86 139-1234-5678,广东省深圳市南山区科技园路1号,"
    "2024/3/5,高血压；2型糖尿病,空腹血糖,100.8,mg/dL,70-110",
    # row 3: same person, lower-case x, sex as 1, compact date; creatinine in mg/dL
    f"张三,1,19850312,{ID_ZHANG.lower()},13912345678,,2024/3/5,,肌酐,1.2,mg/dl,0.6～1.2",
    # row 4: bad check character -> rejected
    "李四,女,1990.5.17,110101199005170021,010-12345678,,20240306,感冒,血红蛋白,120,g/L,115-150",
    # row 5: no ID; dotted date, time of day, landline with area code; cholesterol with upper bound
    "王五,男,1970.1.1,,(0755)8888 8888,北京市朝阳区建国路88号,2024-03-07 08:00,,TC,5.2,mmol/L,<5.2",
    # row 6: ID and birth date disagree -> rejected
    f"陈七,男,1978-01-02,{ID_CHEN},13700000000,,2024-03-08,,,,,",
    # row 7: nothing identifies the person -> rejected
    ",,,,,,2024-03-08,,GLU,5.0,mmol/L,3.9-6.1",
    # row 8: unit that cannot be converted for the analyte -> rejected
    "赵六,女,1980-01-01,,13600000000,,2024-03-09,,GLU,5.0,IU/L,",
    # row 9: unknown lab item and unit kept as text; bad phone (warning, row stored); Excel serial visit date
    "孙八,未知,1960-06-06,,12345,,45360,,某特殊项目,阴性,,阴性",
]


def gbk_csv(tmp: Path, name: str = "hospital_a.csv") -> Path:
    path = tmp / name
    path.write_bytes(("\r\n".join([GBK_HEADER, *GBK_ROWS]) + "\r\n").encode("gbk"))
    return path


def xlsx_file(tmp: Path, name: str = "hospital_b.xlsx") -> Path:
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.append(["Name", "Sex", "DOB", "ID_Card", "Mobile", "Visit Date", "Diagnosis", "GLU(mg/dL)", "HbA1c(%)"])
    ws.append(["王小红", "F", datetime(1990, 5, 17), ID_WANG, 13912345679, date(2024, 3, 5), "2型糖尿病", 126, 7.2])
    ws.append(["Li Lei", "male", "1988/8/8", None, "+86 138 0000 0001", 45357, None, 90, None])
    wb.save(path := tmp / name)
    return path


def jsonl_file(tmp: Path, name: str = "hospital_c.jsonl") -> Path:
    lines = [
        '{"patient": {"name": "周九", "gender": "女", "birth_date": "1975-07-07", "phone": "13500000000"}, '
        '"visit_date": "2024-03-10", "diagnosis": "骨质疏松"}',
        "{not json",
        '{"patient": {"name": "吴十", "gender": "M", "birth_date": "1966-06-16"}, "test": "ALT", "result": "35", '
        '"unit": "U/L", "ref_range": "9-50"}',
    ]
    path = tmp / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


HL7_TEXT = (
    "MSH|^~\\&|HIS|H1|XL|XL|20240305080000||ADT^A01|MSG001|P|2.5\r"
    "EVN|A01|20240305080000\r"
    f"PID|1||MRN001^^^H1^PI~{ID_WANG}^^^^NNCHN||王^小红||19900517|F|||北京市朝阳区建国路88号||13912345679\r"
    "PV1|1|O|||||||||||||||||V001|||||||||||||||||||||||||20240305080000\r"
    "DG1|1||E11.900^2型糖尿病^ICD10||20240305\r"
    "MSH|^~\\&|LIS|H1|XL|XL|20240305090000||ORU^R01|MSG002|P|2.5\r"
    f"PID|1||MRN001^^^H1^PI~{ID_WANG}^^^^NNCHN||王^小红||19900517|F\r"
    "OBR|1||LAB1|CHEM\r"
    "OBX|1|NM|GLU^葡萄糖^L||126|mg/dL|70-110|H|||F|||20240305083000\r"
    "OBX|2|NM|K^钾^L||4.1|mmol/L|3.5-5.3|N|||F|||20240305083000\r"
    "MSH|^~\\&|HIS|H1|XL|XL|20240305100000||ADT^A03|MSG003|P|2.5\r"
    "PID|1||MRN002^^^H1^PI||李^雷\r"
)


def hl7_file(tmp: Path, name: str = "feed.hl7", sep: str = "\r") -> Path:
    path = tmp / name
    path.write_text(HL7_TEXT.replace("\r", sep), encoding="utf-8")
    return path


# --------------------------------------------------------------------------------------------------
# A generated export of any size: mostly clean rows, with every kind of mess sprinkled in


def _id_number(rnd, born: date, male: bool) -> str:
    from xinglin.core.identity import id_check_char

    seq = rnd.randrange(0, 999, 2) + (1 if male else 0)
    first17 = f"{rnd.choice(['110101', '440305', '320102', '330106'])}{born:%Y%m%d}{seq:03d}"
    return first17 + id_check_char(first17)


def messy_rows(rows: int, seed: int = 11, *, people: int | None = None) -> list[str]:
    """CSV lines (header first) of a generated export; deterministic for a seed. Rows per person vary."""
    import random

    rnd = random.Random(seed)
    surnames = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁謝宋唐許韓馮鄧曹彭曾肖田董袁潘于蒋欧阳"
    given = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂华建国志红玉梅國華麗"
    folks = []
    for _ in range(people or max(1, rows // 3)):
        born = date(rnd.randint(1930, 2015), rnd.randint(1, 12), rnd.randint(1, 28))
        male = rnd.random() < 0.5
        name = rnd.choice(surnames) + "".join(rnd.choice(given) for _ in range(rnd.randint(1, 2)))
        idn = _id_number(rnd, born, male) if rnd.random() < 0.75 else ""
        phone = f"1{rnd.randint(3, 9)}{rnd.randint(0, 999999999):09d}"
        folks.append([name, male, born, idn, phone])
    dates = ["{y}年{m}月{d}日", "{y}/{m}/{d}", "{y}{m:02d}{d:02d}", "{y}.{m}.{d}", "{y}-{m:02d}-{d:02d}"]
    labs = [
        ("GLU", "mg/dL", 70, 140, "70-110"), ("血糖", "mmol/L", 3.5, 9.0, "3.9～6.1"),
        ("肌酐", "umol/L", 50, 130, "44-133"), ("肌酐", "mg/dl", 0.5, 1.6, "0.6～1.2"),
        ("TC", "mmol/L", 3.0, 7.0, "<5.2"), ("ALT", "U/L", 5, 80, "9-50"), ("HGB", "g/L", 100, 170, "115-150"),
        ("WBC", "10^9/L", 3.0, 12.0, "3.5-9.5"), ("钾", "mmol/L", 3.0, 5.8, "3.5-5.3"),
        ("某特殊项目", "", 0, 0, "阴性"),
    ]  # fmt: skip
    lines = ["姓名,性别,出生日期,身份证号,联系电话,家庭住址,就诊日期,诊断,检验项目,结果,单位,参考范围"]
    for _ in range(rows):
        name, male, born, idn, phone = folks[rnd.randrange(len(folks))]
        sex = rnd.choice(["男", "1", "M", "male"] if male else ["女", "2", "F", "female"])
        birth = rnd.choice(dates).format(y=born.year, m=born.month, d=born.day)
        visit = rnd.choice(dates).format(y=2024, m=rnd.randint(1, 12), d=rnd.randint(1, 28))
        item, unit, lo, hi, ref = rnd.choice(labs)
        result = "阴性" if not unit else f"{rnd.uniform(lo, hi):.1f}"
        dx = rnd.choice(["", "", "高血压", "2型糖尿病", "高血压；高脂血症", "感冒、咳嗽"])
        addr = rnd.choice(
            ["", "", "广东省深圳市南山区科技园路1号", "北京市朝阳区建国路88号", "杭州市西湖区文三路 90 号"]
        )
        row = [name, sex, birth, idn, phone, addr, visit, dx, item, result, unit, ref]
        r = rnd.random()  # the mess, a few percent of rows each
        if r < 0.02:
            row[3] = idn[:-1] + ("0" if idn[-1:] != "0" else "1") if idn else "110101199002300024"  # bad ID
        elif r < 0.04:
            row[1] = "女" if male else "男"  # sex differs from the ID number (when there is one)
        elif r < 0.05:
            row[2] = f"{born.year + 1}-01-01"  # birth date differs from the ID number
        elif r < 0.06:
            row[0] = row[3] = ""  # nothing identifies the person
        elif r < 0.07:
            row[10] = "IU/L"  # unconvertible unit
        elif r < 0.08:
            row[9] = ""  # a test without a result
        elif r < 0.09:
            row[4] = "12345"  # bad phone (a warning)
        elif r < 0.10:
            row[6] = rnd.choice(["2024-02-30", "next tuesday", "45360", "2024-03-05 08:00", "２０２４年３月５日"])
        elif r < 0.11:
            row[0] = rnd.choice(["Ｌｉ　Ｌｅｉ", " 張 三 ", "买买提 • 艾力", "张3", "李"])
        elif r < 0.12:
            row[4] = rnd.choice(["+86 139-1234-5678", "(010)12345678", "0755-8888 8888", "13912345678/021-12345678"])
        elif r < 0.125:
            row[3] = idn.lower() if idn else "110101900517002"  # lower-case x, or 15 digits
        elif r < 0.13:
            row = row[:7]  # too few fields
        elif r < 0.135:
            row = [*row, "", ""]  # empty extra fields: fine
        elif r < 0.14:
            row[1] = rnd.choice(["未知", "x?", "9"])
        elif r < 0.145:
            row[9] = rnd.choice(["5.6↑", "<0.5", "6.1mmol/L", "5.6 H", "阳性(+)"])
        lines.append(",".join(row))
        if rnd.random() < 0.003:
            lines.append(rnd.choice(["", ",,,,", "   "]))  # blank lines are not rows
    return lines


def messy_csv(
    tmp: Path, rows: int, seed: int = 11, name: str = "messy.csv", *, quoted: bool = False, people: int | None = None
) -> Path:
    """A GB18030 CSV of :func:`messy_rows`; ``quoted`` puts double quotes around every non-empty field."""
    lines = messy_rows(rows, seed, people=people)
    if quoted:
        lines = [",".join(f'"{f}"' if f else f for f in line.split(",")) for line in lines]
    path = tmp / name
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode("gb18030"))
    return path
