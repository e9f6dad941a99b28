"""Write sample_zh.jsonl: 600 Chinese (Simplified) sentences with PER, ORG, LOC and PRODUCT spans (seeded).

    python make_sample_zh.py   # rewrites sample_zh.jsonl next to this file

Hand-written templates from three domains (customer support tickets, financial news,
product and retail mentions) are filled from hand-written name lists; the people,
companies and products are invented, the places are real provinces, cities and districts
(and a few foreign cities). Each line is {"text": ..., "spans": [{"start", "end", "label"}]}
with character offsets into the text (text[start:end] is the entity). As in real Chinese
text there are no spaces between words; entities touch Chinese punctuation, and Latin
letters and digits appear inside product names, order numbers and amounts.
"""
from __future__ import annotations

import random
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_sample import build, write  # noqa: E402  (the English generator's machinery)

# Names are combined from parts, so most entities of the evaluation split never occur in
# training: the model must generalise from context, and a gazetteer cannot simply recall.
SURNAME = ["王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴", "徐", "孙", "胡", "朱",
           "高", "林", "何", "郭", "罗", "梁", "宋", "郑", "谢", "韩", "唐", "冯", "于", "董",
           "萧", "程", "曹", "袁", "邓", "许", "傅", "沈", "曾", "彭", "吕", "苏", "蒋", "叶",
           "欧阳", "司马", "上官", "诸葛", "东方", "慕容"]
GIVEN = ["建国", "伟", "芳", "静", "磊", "洋", "婷", "超", "秀英", "志强", "晓东", "丽华", "海燕",
         "俊杰", "雨桐", "子涵", "浩然", "思远", "梓萱", "一鸣", "嘉怡", "文博", "欣怡", "宇航",
         "佳琪", "振华", "玉兰", "国庆", "春生", "秋菊", "冬梅", "立新", "明轩", "若曦", "天佑",
         "雅婷", "家豪", "晨", "悦", "辉", "敏", "涛", "鹏", "琳", "倩", "彬", "凯", "蕾",
         "梦瑶", "书宁", "云舒", "景行", "泽宇", "安琪", "永福", "桂英", "德胜", "少华", "亦凡",
         "诗涵", "铭", "岚"]
# Combinations that happen to be famous real people are left out.
FAMOUS = {"刘涛", "李晨", "吴亦凡", "杨洋", "林俊杰", "周涛", "黄磊", "邓超", "王凯", "孙悦", "郑凯",
          "程琳"}
BRAND = ["华辰", "远航", "金穗", "澜星", "青禾", "云帆", "鼎丰", "星途", "博睿", "启明", "瑞岚",
         "海岳", "曜石", "锦程", "澄川", "北辰", "墨羽", "银杉", "蓝鲸", "凌峰", "天衡", "禾木",
         "晨曦", "沐阳", "拓界", "九岭", "若水", "岚山", "泓川", "知微", "浩宇", "千帆", "灵犀",
         "翠屏", "长庚", "晴川", "嵘峰", "砚池", "羲和", "望舒", "栖梧", "明湖"]
SUFFIX = ["科技", "集团", "物流", "银行", "股份有限公司", "证券", "食品", "电子", "控股", "保险",
          "医药", "能源", "汽车", "传媒", "科技集团", "电器", "基金", "航空"]
# Registered company names often carry a city prefix: 深圳澜星科技有限公司 (the whole is ORG).
ORG_CITY = ["深圳", "杭州", "上海", "北京", "苏州", "成都", "武汉", "广州", "合肥", "厦门"]
ORG_LTD = ["科技有限公司", "物流有限公司", "食品有限公司", "电子有限公司", "贸易有限公司"]
DIGITAL = ["手机", "笔记本", "平板", "智能手表", "耳机", "显示器", "路由器", "充电宝"]
DIGITAL_MODEL = ["X3", "X5 Pro", "Pro 12", "Air 5", "Note 9", "S20", "GT 2", "K50", "Mini 2",
                 "Ultra 7", "Neo 3", "Max", "Lite", "M1", "Pad 6", "Book 14", "畅享10", "星河7"]
HOME = ["扫地机器人", "空气净化器", "净水器", "冰箱", "洗衣机", "电饭煲", "投影仪", "电动牙刷"]
HOME_MODEL = ["A7", "T10", "i5", "S9 Max", "Z1", "V8", "C3 Plus", "H6", "P2", "悦享S", "静音Q8"]
LOC = ["上海", "北京", "广州", "深圳", "杭州", "成都", "重庆", "武汉", "西安", "南京", "苏州",
       "天津", "长沙", "郑州", "青岛", "厦门", "昆明", "哈尔滨", "沈阳", "大连", "合肥", "福州",
       "济南", "贵阳", "南宁", "兰州", "乌鲁木齐", "拉萨", "呼和浩特", "海口", "宁波", "无锡",
       "东莞", "佛山", "广东", "浙江", "江苏", "四川", "湖南", "湖北", "山东", "河南", "云南",
       "福建", "黑龙江", "内蒙古", "新疆", "海南", "浦东新区", "海淀区", "南山区", "天河区",
       "朝阳区", "滨江区", "武侯区", "徐汇区", "香港", "澳门", "新加坡", "法兰克福", "东京",
       "首尔", "伦敦", "纽约", "吉隆坡", "曼谷", "迪拜", "悉尼", "慕尼黑", "雅加达", "胡志明市"]
PAST = ["昨天", "前天", "上周", "上周五", "本月初", "3月", "今天上午", "上个月", "周一"]
SOON = ["明天", "下周", "月底", "下个月", "本周五", "年底前", "三天内", "下周一", "10月"]
PCT = ["3.2%", "12%", "0.8%", "近两成", "5.6%", "逾三成", "1.5个百分点", "18%", "7.4%"]
MONEY = ["3.2亿元", "5000万美元", "12亿元", "1.8亿欧元", "860万元", "4.5亿港元", "27亿元", "9800万元"]
PRICE = ["2999元", "¥1,299", "499元", "200元", "6999元", "1,599元", "89元", "3499元"]
SECTOR = ["半导体", "医药", "新能源", "白酒", "银行", "地产", "消费电子", "军工"]


def person(rng: random.Random) -> str:
    while True:
        name = rng.choice(SURNAME) + rng.choice(GIVEN)
        if name not in FAMOUS:
            return name


def org(rng: random.Random) -> str:
    if rng.random() < 0.15:
        return rng.choice(ORG_CITY) + rng.choice(BRAND) + rng.choice(ORG_LTD)
    return rng.choice(BRAND) + rng.choice(SUFFIX)


def product(rng: random.Random) -> str:
    if rng.random() < 0.65:
        return rng.choice(BRAND) + rng.choice(DIGITAL_MODEL) + rng.choice(DIGITAL)
    return rng.choice(BRAND) + rng.choice(HOME_MODEL) + rng.choice(HOME)


POOLS = {
    "PER": person, "ORG": org, "PRODUCT": product,
    "LOC": lambda rng: rng.choice(LOC),
    "PAST": lambda rng: rng.choice(PAST),
    "SOON": lambda rng: rng.choice(SOON),
    "PCT": lambda rng: rng.choice(PCT),
    "MONEY": lambda rng: rng.choice(MONEY),
    "PRICE": lambda rng: rng.choice(PRICE),
    "SECTOR": lambda rng: rng.choice(SECTOR),
    "ORDER": lambda rng: rng.choice(["DD", "JX", "", ""]) + "".join(rng.choice("0123456789") for _ in range(12)),
    "CODE": lambda rng: str(rng.randint(100, 9999)),
    "YEAR": lambda rng: str(rng.randint(2019, 2024)),
    "COUNT": lambda rng: rng.choice(["1万", "5000", "3.6万", "12万", "8000", "两万"]),
    "HOURS": lambda rng: str(rng.randint(3, 6)),
}
LABELS = {"PER": "PER", "ORG": "ORG", "LOC": "LOC", "PRODUCT": "PRODUCT"}
SLOT = re.compile(r"\{(" + "|".join(POOLS) + r")\}")

SUPPORT = [
    "我在{LOC}买的{PRODUCT}屏幕坏了，能不能换一台？",
    "你好，我是{PER}，订单号{ORDER}的{PRODUCT}到现在还没发货。",
    "{PRODUCT}升级系统后一直重启，{ORG}的售后电话打不通。",
    "请转给{PER}处理：{LOC}的客户反映{PRODUCT}充电时发烫。",
    "{PAST}在{ORG}官方旗舰店下单，收到的{PRODUCT}少了充电器。",
    "客服{PER}说{SOON}会寄出新的{PRODUCT}，可物流信息一直没更新。",
    "我们公司（{ORG}）采购的二十台{PRODUCT}有三台无法开机。",
    "快递员把{PRODUCT}送到了{LOC}，可我住在{LOC}啊！",
    "请问在{LOC}买的{PRODUCT}，能在{LOC}的门店退货吗？",
    "同一笔订单扣了两次款，金额{PRICE}，麻烦{PER}尽快核实。",
    "{PRODUCT}连不上{PRODUCT}，蓝牙配对一直失败。",
    "师傅{PER}约好{PAST}上门安装，结果没人来，也没人通知。",
    "想把{PRODUCT}换成{PRODUCT}，需要补多少差价？",
    "保修卡丢了还能修吗？机器是{PRODUCT}，在{ORG}买的。",
    "投诉：{ORG}配送的包裹在{LOC}分拣中心压了五天。",
    "谢谢{PER}，换的{PRODUCT}用着很正常。",
    "“{PRODUCT}”的App登录提示错误码E{CODE}，怎么解决？",
    "我在{LOC}出差，{PRODUCT}突然黑屏，附近有{ORG}的维修点吗？",
    "麻烦取消我的会员自动续费，已经换用{ORG}的服务了。",
    "您好，请问发票抬头可以开成“{ORG}”吗？",
    "{PER}、{PER}两位同事的{PRODUCT}同时出现闪屏问题。",
    "{PER}在{LOC}的{ORG}门店买的{PRODUCT}，第二天就坏了。",
    "{PRODUCT}开不了机了。",
    "订单{ORDER}显示已签收，但我根本没收到货。",
]
FINANCE = [
    "{ORG}董事长{PER}表示，公司{SOON}将在{LOC}新建生产基地。",
    "{ORG}股价{PAST}下跌{PCT}，创年内新低。",
    "{PER}已从{ORG}离职，加盟{ORG}出任首席财务官。",
    "{ORG}以{MONEY}收购{ORG}位于{LOC}的物流业务。",
    "据{ORG}公告，{PER}不再担任公司总经理职务。",
    "{ORG}{YEAR}年营收同比增长{PCT}，净利润达{MONEY}。",
    "受{LOC}市场需求放缓影响，{ORG}下调了全年业绩预期。",
    "{ORG}分析师{PER}认为，{ORG}的估值仍有上升空间。",
    "{ORG}与{ORG}签署战略合作协议，双方将在{LOC}共建研发中心。",
    "{ORG}计划赴{LOC}上市，募资规模约{MONEY}。",
    "{LOC}监管部门对{ORG}处以{MONEY}罚款。",
    "{ORG}总裁{PER}在{LOC}接受采访时称，海外业务占比已超过三成。",
    "{ORG}宣布任命{PER}为新任董事长，接替{PER}。",
    "得益于{PRODUCT}热销，{ORG}第三季度利润超出市场预期。",
    "{ORG}将总部由{LOC}迁至{LOC}，预计{SOON}完成。",
    "基金经理{PER}（{ORG}）{PAST}增持了{ORG}股份。",
    "{ORG}在{LOC}设立全资子公司，注册资本{MONEY}。",
    "{LOC}港口罢工导致{ORG}多批货物延误。",
    "据悉，{ORG}、{ORG}和{ORG}三家机构参与了本轮融资。",
    "{ORG}董事长{PER}与{ORG}总裁{PER}在{LOC}签署了合作协议。",
    "{ORG}股票自{PAST}起停牌。",
    "{PAST}两市成交额较前一交易日减少{PCT}，{SECTOR}板块领跌。",
]
PRODUCTS = [
    "上手体验{PRODUCT}：{ORG}这次终于把续航做好了。",
    "{PER}说，{PRODUCT}在{LOC}卖得比其他城市便宜。",
    "{PER}从{PRODUCT}换到{PRODUCT}之后，再也没换回去。",
    "{ORG}宣布{SOON}起在{LOC}停售{PRODUCT}。",
    "{ORG}推出的{PRODUCT}将于{SOON}在{LOC}首发，售价{PRICE}。",
    "评测人士称赞{PRODUCT}是{ORG}迄今最好的作品。",
    "因电池存在隐患，{ORG}召回两万台{PRODUCT}。",
    "{PER}在{LOC}发布会上演示了{PRODUCT}的新功能。",
    "不少买家反馈，{PRODUCT}比{PRODUCT}轻了不少。",
    "{ORG}将{PRODUCT}降价{PRICE}，直接对标{ORG}。",
    "我们在{LOC}用了一周，对比了{PRODUCT}和{PRODUCT}。",
    "{PRODUCT}由{PER}带领的团队在{LOC}设计完成。",
    "{PRODUCT}在{LOC}开售不到两小时就卖断货了。",
    "{ORG}确认{PRODUCT}将在{SOON}获得系统更新。",
    "{LOC}的消费者连夜排队抢购{PRODUCT}。",
    "双十一期间，{ORG}的{PRODUCT}销量突破{COUNT}台。",
    "新品速递：{PRODUCT}、{PRODUCT}、{PRODUCT}本周同步上架。",
    "店长{PER}介绍，{ORG}{LOC}门店开业首日客流超过{COUNT}人次。",
    "{ORG}在{LOC}同时发布了{PRODUCT}和{PRODUCT}。",
    "{PRODUCT}值得买吗？",
    "这款耳机音质不错，就是续航只有{HOURS}小时，充满要{HOURS}小时。",
]


def pick(slot: str, used: set, rng: random.Random) -> str:
    """A value for ``slot``: an entity not used yet in the sentence."""
    value = POOLS[slot](rng)
    while slot in LABELS and value in used:
        value = POOLS[slot](rng)
    return value


def fill(template: str, rng: random.Random) -> dict:
    """One sentence built piece by piece (distinct values within a sentence), with spans."""
    return build(template, rng, SLOT, pick, LABELS)


def main(count: int = 600, seed: int = 0) -> None:
    write(SUPPORT + FINANCE + PRODUCTS, fill, count, seed, "sample_zh.jsonl")


if __name__ == "__main__":
    main()
