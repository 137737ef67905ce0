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
    "Start a scan": "发起扫描",
    "Seed URLs (one a line)": "起始网址（每行一个）",
    "Seed URLs": "起始网址",
    "Scope": "范围",
    "the seed pages only": "仅起始页面",
    "below the seed path": "起始网址路径之下",
    "the seed host": "起始网址所在主机",
    "the seed domain": "起始网址所在域名",
    "Link depth": "链接深度",
    "Most pages": "最多页面数",
    "Seconds between requests": "请求间隔（秒）",
    "Internal addresses allowed (space-separated)": "允许访问的内网地址（空格分隔）",
    "Start the scan": "开始扫描",
    "Scans": "扫描",
    "Scan": "扫描",
    "No scans yet.": "尚无扫描。",
    "Cases": "案件",
    "Case": "案件",
    "All statuses": "全部状态",
    "Filter": "筛选",
    "Page URL": "页面网址",
    "Media URL": "媒体网址",
    "Fetched from": "实际获取地址",
    "No cases found.": "没有找到案件。",
    "State": "状态",
    "Configuration": "配置",
    "Evidence packages and reports": "证据包与报告",
    "The registered work": "登记作品",
    "The copy found": "发现的副本",
    "Library": "作品库",
    "not in the platform library": "不在本平台作品库中",
    "threshold": "阈值",
    "Found": "发现时间",
    "robots.txt obeyed": "遵守 robots.txt",
    "yes": "是",
    "no": "否",
    "Takedown notice": "删除通知",
    "Change status": "变更状态",
    "Note": "备注",
    "No changes yet.": "尚无变更。",
    "New": "新案件",
    "Confirmed": "已确认",
    "Notice sent": "已发通知",
    "Resolved": "已解决",
    "Dismissed": "已驳回",
    "Running": "进行中",
    "Finished": "已完成",
    "Failed": "失败",
    "Stored": "已保存",
    "Query": "查询",
    "Run the query": "执行查询",
    "Answer": "结果",
    "Refused by": "拒绝方",
    "Protocol": "协议",
    "Decisions of the agencies": "各机构的决定",
    "Agency": "机构",
    "Agencies": "机构",
    "Decision": "决定",
    "Reason": "理由",
    "accepted": "接受",
    "refused": "拒绝",
    "Audit record": "审计记录",
    "Policy limits": "策略限制",
    "Smallest group": "最小分组",
    "Fewest agencies": "最少机构数",
    "Differential privacy required": "须差分隐私",
    "ε budget": "ε 预算",
    "What the role may query": "本角色可查询",
    "Catalogue": "数据目录",
    "Table": "表",
    "Column": "列",
    "Properties": "属性",
    "Audit trail": "审计记录链",
    "No queries yet.": "尚无查询。",
    "Work id (64 hex digits)": "作品编号（64 位十六进制）",
    "Show the transfers": "查看转让记录",
    "Registered auditor key": "已登记的审计密钥",
    "Sequence": "序号",
    "New owner key": "新权利人公钥",
    "Royalty parties": "版税分配方",
    "Proofs": "证明",
    "verified": "已验证",
    "No recorded transfer of this work.": "该作品没有转让记录。",
    (
        "The price and the share of each party are encrypted to the auditor key; "
        "only the auditor opens them, with:"
    ): "价格与各方份额均以审计密钥加密，仅审计员可打开，命令：",
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
    "Find in the library": "在作品库中查找",
    "Choose a file (a suspected copy): the registered works found in it are listed.": (
        "选择一个文件（疑似复制品），列出其中发现的已登记作品。"
    ),
    "Find": "查找",
    "No registered work was found in": "未发现已登记作品：",
    "Works found in": "发现的作品：",
    "Score": "得分",
    "Threshold": "阈值",
    "Evidence": "证据",
    "The file could not be examined": "无法检查该文件",
    "Ownership record registered": "所有权记录已登记",
    "Confidential transfer recorded": "保密转让已记录",
    "The ledger verified the proof of possession of the ownership key and committed the record.": (
        "账本已验证所有权密钥的持有证明并提交了该记录。"
    ),
    (
        "Every node verified the range proofs, the ownership proof and the balance proof before "
        "committing the transfer; the price and the shares stay hidden."
    ): ("每个节点在提交转让前都验证了范围证明、所有权证明和平衡证明；价格和分成始终保密。"),
    "Ownership record now": "当前所有权记录",
    "owner key": "所有者密钥",
    "Back to the transfers of this work": "返回该作品的转让记录",
    "Work of this library": "本库作品",
    "Ownership record": "所有权记录",
    "Owner key": "所有者密钥",
    "Held by this organization": "由本机构持有",
    "This work has no ownership record on the ledger.": "该作品在账本上没有所有权记录。",
    (
        "A fresh ownership key is made and kept (encrypted) by this platform; the ledger records "
        "its public key as the first owner."
    ): ("平台生成一个新的所有权密钥并加密保存；账本将其公钥记录为首个所有者。"),
    "Register the ownership record": "登记所有权记录",
    "Key for receiving this work": "接收该作品的密钥",
    "Give both values to the seller; the secret key stays with this platform.": (
        "请将以下两项交给卖方；私钥保留在本平台。"
    ),
    "Ownership key": "所有权密钥",
    "Proof of possession": "持有证明",
    "Make a confidential transfer": "进行保密转让",
    (
        "The price and the shares are hidden on the ledger: they are committed, proven in range "
        "and balanced, and encrypted to the registered auditor key. The proofs are made here with "
        "the ownership key of this organization."
    ): (
        "价格和分成在账本上保密：它们以承诺形式记录，并证明在范围内且收支平衡，同时加密给"
        "已登记的审计密钥。证明由本平台用本机构的所有权密钥生成。"
    ),
    "Ownership key of the buyer (66 hex digits)": "买方的所有权密钥（66 位十六进制）",
    "Proof of possession of the buyer (128 hex digits)": "买方的持有证明（128 位十六进制）",
    "Price (yuan)": "价格（元）",
    "Royalty shares (they must sum to the price)": "版税分成（总和须等于价格）",
    "Party": "参与方",
    "Amount (yuan)": "金额（元）",
    "Prove and send the transfer": "生成证明并发送转让",
    "Make a key to receive this work": "生成接收该作品的密钥",
    "Recorded transfers": "已记录的转让",
    "Opened with the auditor key": "用审计密钥打开",
    "Price": "价格",
    "Royalty shares": "版税分成",
    (
        "The proofs of each transfer were verified again before it was opened; the key was used "
        "for this page only and not kept."
    ): ("打开前已重新验证每笔转让的证明；密钥仅用于本页面，不予保存。"),
    (
        "Open the recorded transfers: the auditor key file and its password are used for this "
        "request only and never kept."
    ): ("打开已记录的转让：审计密钥文件及其密码仅用于本次请求，不予保存。"),
    "Auditor key file": "审计密钥文件",
    "Open the transfers": "打开转让记录",
    "Work id (64 hex digits) or a work of this library": "作品 ID（64 位十六进制）或本库作品",
    "Transfers of this work": "该作品的转让",
    "Sign in with an SM2 key": "使用 SM2 密钥登录",
    "Sign this text with your key file within {s} seconds, then paste the signature below.": (
        "请在 {s} 秒内用您的密钥文件签署以下文本，然后将签名粘贴到下方。"
    ),
    "Copy the text into a file (here challenge.txt) and run:": (
        "将文本复制到文件（此处为 challenge.txt）并运行："
    ),
    "Signature (hex)": "签名（十六进制）",
    "Get a challenge to sign": "获取待签名的挑战",
    "Sign in with a password": "使用密码登录",
    "My account": "我的账户",
    "SM2 key for signing in": "用于登录的 SM2 密钥",
    "none": "无",
    (
        "Register the public half of your SM2 key (the .pub.pem file that rongxin crypto keygen "
        "writes, or its hex); you can then sign in by signing a challenge with the key file."
    ): (
        "登记您的 SM2 公钥（rongxin crypto keygen 生成的 .p"
        "ub.pem 文件或其十六进制）；之后即可用密钥文件签署挑战来登录。"
    ),
    "SM2 public key (PEM or hex)": "SM2 公钥（PEM 或十六进制）",
    "Save the key": "保存密钥",
    "Remove the key": "删除密钥",
    "Empty: remove the key": "留空：删除密钥",
    "Set SM2 key": "设置 SM2 密钥",
}
"""English interface text -> Chinese."""


def translate(text: str, lang: str) -> str:
    """``text`` in ``lang`` (English text is its own key; unknown text stays English)."""
    if lang == "zh":
        return ZH.get(text, text)
    return text
