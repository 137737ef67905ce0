"""Chinese by default, English switchable: the platform's interface text.

Templates and routes write the English text and call :func:`translate`; :data:`ZH` maps
it to Chinese. Text without a Chinese entry is shown in English (a test lists every
template string that lacks one).

Examples
--------
>>> translate("Blocks", "zh"), translate("Blocks", "en")
('区块', 'Blocks')
"""

from __future__ import annotations

from typing import Final

LANGUAGES: Final[tuple[str, ...]] = ("zh", "en")

ZH: Final[dict[str, str]] = {
    "Rongxin member platform": "融信成员平台",
    "Sign in": "登录",
    "Sign out": "退出",
    "User name": "用户名",
    "Password": "密码",
    "Wrong user name or password.": "用户名或密码错误。",
    "Too many failed sign-ins; try again in {s} s.": "登录失败次数过多，请在 {s} 秒后重试。",
    "Home": "首页",
    "Explorer": "区块浏览器",
    "Blocks": "区块",
    "Block": "区块",
    "Transactions": "交易",
    "Transaction": "交易",
    "Validators": "验证节点",
    "Nodes": "节点",
    "Nodes online": "在线节点",
    "Search": "搜索",
    "Height, block hash, transaction id or anchored digest": "高度、区块哈希、交易 ID 或已锚定摘要",
    "Receipt checker": "回执核验",
    "Works": "作品",
    "Register a work": "登记作品",
    "Operations": "运维",
    "Users": "用户管理",
    "Scans and cases": "扫描与案件",
    "Regulator console": "监管查询",
    "Transfers": "版权转让",
    "Not yet available": "尚未开放",
    "This part of the platform is not built yet. It comes in the next version.": (
        "平台的这一部分尚未建成，将在下一版本提供。"
    ),
    "Height": "高度",
    "Hash": "哈希",
    "Time": "时间",
    "Proposer": "提议者",
    "Round": "轮次",
    "Epoch": "纪元",
    "Parent": "父区块",
    "Transaction root": "交易根",
    "State root": "状态根",
    "Signers": "签名者",
    "Type": "类型",
    "Sender": "发送者",
    "Nonce": "序号",
    "Status": "状态",
    "Result": "结果",
    "Payload": "载荷",
    "Index": "索引",
    "Older": "更早",
    "Newer": "更新",
    "Chain": "链",
    "Head": "最新区块",
    "Mempool": "交易池",
    "Peers": "对等节点",
    "Block production": "出块情况",
    "transactions per interval": "每个时段的交易数",
    "blocks": "个区块",
    "Anchored digest": "已锚定摘要",
    "Kind": "种类",
    "Count": "数量",
    "Receipt": "回执",
    "Download receipt": "下载回执",
    "Download proof": "下载证明路径",
    "Verified against the genesis": "已对照创世文件验证",
    "Check": "核验",
    "Receipt file": "回执文件",
    "Proof file (for a digest in a batch, optional)": "证明路径文件（批量锚定的摘要，可选）",
    "Digest (optional)": "摘要（可选）",
    "The receipt is valid.": "回执有效。",
    "The receipt is NOT valid": "回执无效",
    "Nothing found for": "未找到",
    "No node is configured: the explorer has nothing to read.": "未配置节点：浏览器无数据可读。",
    "The node could not answer": "节点无法应答",
    "Title": "标题",
    "Owner": "权利人",
    "Work id": "作品编号",
    "File": "文件",
    "Registered": "登记时间",
    "Content SM3": "内容 SM3",
    "Fingerprint SM3": "指纹 SM3",
    "Fingerprint anchor": "指纹锚定",
    "Not anchored yet.": "尚未锚定。",
    "Register": "登记",
    "The work was registered.": "作品已登记。",
    "The work could not be registered": "作品无法登记",
    "registered but not anchored": "已登记但未锚定",
    "All kinds": "全部种类",
    "image": "图像",
    "audio": "音频",
    "video": "视频",
    "No works found.": "未找到作品。",
    "Metadata": "元数据",
    "Online": "在线",
    "Offline": "离线",
    "Role": "角色",
    "Roles": "角色",
    "Node": "节点",
    "Voting": "投票",
    "Catching up": "同步中",
    "Operations audit log": "运维审计日志",
    "Event": "事件",
    "User": "用户",
    "Details": "详情",
    "Create user": "创建用户",
    "Display name": "显示名称",
    "Active": "启用",
    "Disabled": "已停用",
    "Save roles": "保存角色",
    "Reset password": "重置密码",
    "Disable": "停用",
    "Enable": "启用",
    "Done.": "已完成。",
    "You do not have access to this page.": "您无权访问此页面。",
    "Not found": "未找到",
    "legal_staff": "法务人员",
    "regulator": "监管人员",
    "editor": "编辑",
    "operator": "运维人员",
    "auditor": "审计员",
    "admin": "管理员",
    "Uploading…": "正在上传…",
    "Language": "语言",
    "Key metrics": "关键指标",
    "Registered works": "已登记作品",
    "Welcome": "欢迎",
    "Seconds since the last block": "距最新区块秒数",
    "Page": "页",
}
"""English interface text -> Chinese."""


def translate(text: str, lang: str) -> str:
    """``text`` in ``lang`` (English text is its own key; unknown text stays English)."""
    if lang == "zh":
        return ZH.get(text, text)
    return text
