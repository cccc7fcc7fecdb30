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
