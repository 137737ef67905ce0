"""The report's words in Chinese (the default) and English.

Examples
--------
>>> words("zh")["title"], words("en")["title"]
('侵权取证报告', 'Infringement evidence report')
"""

from __future__ import annotations

from forensics.report.model import ReportError

LANGUAGES = ("zh", "en")

_TEXT: dict[str, tuple[str, str]] = {
    "title": ("侵权取证报告", "Infringement evidence report"),
    "issuer": ("出具机构", "Issued by"),
    "generated": ("生成时间（UTC）", "Generated (UTC)"),
    "case": ("案件编号", "Case"),
    "summary": ("一、摘要", "1. Summary"),
    "summary_text": (
        "登记作品「{work}」在下列网页上被发现：匹配得分 {score}，超过阈值 {threshold}"
        "（阈值按每次查询误报率 {fpr} 标定）。",
        "The registered work “{work}” was found on the page below: match score {score}, above the "
        "threshold {threshold} (calibrated for a false-positive rate of {fpr} per query).",
    ),
    "page_url": ("侵权网页", "Page"),
    "media_url": ("媒体地址", "Media URL"),
    "final_url": ("实际下载地址", "Fetched from"),
    "found_at": ("发现时间（UTC）", "Found (UTC)"),
    "robots": ("robots.txt", "robots.txt"),
    "robots_yes": ("已遵守", "obeyed"),
    "robots_no": ("扫描时未遵守（已记录）", "overridden for this scan (recorded)"),
    "kind": ("媒体类型", "Media kind"),
    "kind_image": ("图片", "image"),
    "kind_audio": ("音频", "audio"),
    "kind_video": ("视频", "video"),
    "soundtrack_note": (
        "侵权文件为视频，通过其音轨识别出该音频作品。",
        "The copy is a video file; the audio work was found in its soundtrack.",
    ),
    "work_section": ("二、登记作品", "2. The registered work"),
    "work_id": ("作品编号", "Work id"),
    "registered_at": ("登记时间（UTC）", "Registered (UTC)"),
    "content_sm3": ("内容 SM3", "Content SM3"),
    "fingerprint_sm3": ("指纹 SM3", "Fingerprint SM3"),
    "metadata": ("登记信息", "Metadata"),
    "comparison": ("三、作品与侵权副本对比", "3. The work and the copy side by side"),
    "work": ("登记作品", "Work"),
    "copy": ("侵权副本", "Copy"),
    "seconds": ("时间（秒）", "time (s)"),
    "hz": ("频率（Hz）", "frequency (Hz)"),
    "span": ("对齐区间", "aligned span"),
    "bits": ("位不同", "bits differ"),
    "similarity": ("相似度", "similarity"),
    "threshold": ("判定阈值", "threshold"),
    "similarity_title": ("相似度随时间变化（侵权副本时间轴）", "Similarity over time (the copy's time)"),
    "image_caption": (
        "左：登记作品；右：侵权副本。红框为作品在副本中的位置，"
        "绿线连接经同一几何变换验证的特征点（{n} 对）。",
        "Left: the work; right: the copy. The red outline is where the work lies in the copy; green lines "
        "join keypoints verified by one geometric transform ({n} pairs).",
    ),
    "image_caption_none": (
        "左：登记作品；右：侵权副本。红框为比对区域；未找到可绘制的特征点对应（全局感知哈希匹配）。",
        "Left: the work; right: the copy. The red outline is the compared region; no keypoint "
        "correspondences could be drawn (matched by the global perceptual hash).",
    ),
    "spectro_caption": (
        "上：登记作品；下：侵权副本。绿色区域为相互对齐的区间。",
        "Top: the work; bottom: the copy. The green bands are the spans aligned with each other.",
    ),
    "audio_sim_caption": (
        "按对齐关系比较两段频谱（白化后逐帧相关，每秒取平均）；对齐区间外约为 0。",
        "The two spectra compared at the alignment (whitened, frame by frame, averaged per second); "
        "about 0 outside the aligned span.",
    ),
    "video_sim_caption": (
        "每秒画面相似度（1 − 不同位数 / 128），取自匹配证据。",
        "Picture similarity per second (1 − differing bits / 128), from the match evidence.",
    ),
    "frames_caption": (
        "沿对齐关系抽取的帧对（左：作品；右：副本）。红框为去除黑边后的画面，橙框为画中画区域。",
        "Frame pairs along the alignment (left: work; right: copy). Red: the picture without bars; "
        "orange: a picture-in-picture inset.",
    ),
    "no_work_file": (
        "未提供登记作品的原始文件，无法绘制对比图；作品的内容摘要见上表。",
        "The registered work's file was not supplied, so no side-by-side figure is drawn; its "
        "digests are listed above.",
    ),
    "no_copy_file": (
        "未提供侵权副本文件（扫描只保存其摘要），无法绘制对比图；副本内容 SM3 见上表。",
        "The copy's file was not supplied (a scan keeps only its digest), so no side-by-side figure "
        "is drawn; the copy's content SM3 is listed above.",
    ),
    "figure_failed": ("对比图无法生成：{error}", "The figure could not be drawn: {error}"),
    "evidence_section": ("四、匹配证据", "4. Match evidence"),
    "field": ("项目", "Field"),
    "value": ("内容", "Value"),
    "capture_section": ("五、网页取证", "5. Web capture"),
    "no_capture": (
        "无取证包：本案尚未进行浏览器取证（截图、录屏、WARC），因此本报告不含网页截图、取证过程、"
        "环境记录、取证包签名与上链回执。下列内容仅基于扫描记录。",
        "No capture package: the page has not been captured with the browser (screenshot, screen "
        "recording, WARC) for this case, so this report holds no page screenshot, capture timeline, "
        "environment record, package signature or package receipt. What follows rests on the scan "
        "record alone.",
    ),
    "package": ("取证包", "Package"),
    "package_sm3": ("取证包 SM3", "Package SM3"),
    "screenshot": ("网页截图", "Page screenshot"),
    "screenshot_caption": (
        "取证时的整页截图（缩小显示，长页面只显示顶部）；"
        "原图为取证包中的 evidence/screenshot.png，摘要见第六节。",
        "The full-page screenshot taken at capture (scaled; a long page shows its top); the original is "
        "evidence/screenshot.png in the package, its digests in section 6.",
    ),
    "no_screenshot": ("取证包中没有截图。", "The package holds no screenshot."),
    "timeline": ("取证过程时间线", "Capture timeline"),
    "time": ("时间（UTC）", "Time (UTC)"),
    "event": ("事件", "Event"),
    "environment": ("取证环境", "Capture environment"),
    "timestamp_token": ("RFC 3161 时间戳", "RFC 3161 timestamp"),
    "digests_section": ("六、文件摘要", "6. File digests"),
    "file": ("文件", "File"),
    "role": ("用途", "Role"),
    "size": ("字节", "Bytes"),
    "role_work": ("登记作品", "registered work"),
    "role_copy": ("侵权副本", "copy"),
    "signature_section": ("七、签名", "7. Signature"),
    "no_signature": ("无签名（无取证包）。", "No signature (no capture package)."),
    "algorithm": ("算法", "Algorithm"),
    "signer": ("签名者", "Signer"),
    "public_key": ("公钥", "Public key"),
    "signed_digest": ("被签名摘要", "Signed digest"),
    "signature_value": ("签名值", "Signature"),
    "checked": ("已核验", "checked"),
    "not_checked": ("未核验", "not checked"),
    "receipt_section": ("八、区块链存证回执", "8. Ledger receipts"),
    "no_receipt": ("无上链回执。", "No ledger receipt."),
    "subject": ("存证对象", "Anchored"),
    "chain_id": ("链标识", "Chain"),
    "height": ("区块高度", "Height"),
    "block_time": ("出块时间（UTC）", "Block time (UTC)"),
    "block_hash": ("区块哈希", "Block hash"),
    "tx_id": ("交易编号", "Transaction"),
    "sender": ("提交成员", "Submitted by"),
    "validators": ("签名验证节点", "Validators"),
    "anchored_digest": ("存证摘要", "Anchored digest"),
    "status": ("核验状态", "Status"),
    "subject_package": ("取证包", "evidence package"),
    "subject_work": ("作品登记", "work registration"),
    "verify_section": ("九、如何离线核验", "9. How to verify offline"),
    "qr_caption": ("扫码获取核验方式", "Scan for the verification"),
    "verify_intro": (
        "核验无需联网，也无需信任出具机构：只需本报告、取证包、回执文件和联盟链的创世文件（genesis.cbor）。",
        "Verification needs no network and no trust in the issuer: only this report, the package, the "
        "receipt files and the consortium's genesis document (genesis.cbor).",
    ),
    "verify_step_hash": (
        "计算每个文件的 SM3 和 SHA-256，与第六节逐一比对，例如：",
        "Hash every file with SM3 and SHA-256 and compare with section 6, e.g.:",
    ),
    "verify_step_package": (
        "核验取证包（每个文件的摘要、SM2 签名与证书、上链回执、时间戳、WARC 可解析）：",
        "Verify the package (every file's digest, the SM2 signature and certificate, the receipt, "
        "the timestamp, that the WARC parses):",
    ),
    "verify_step_receipt": (
        "核验区块链回执（交易已被法定多数验证节点签名确认）：",
        "Verify a ledger receipt (a quorum of validators committed the transaction):",
    ),
    "verify_step_match": (
        "重新比对：用同一作品库识别侵权副本，应得到同一作品与相同对齐：",
        "Re-run the match: identifying the copy against the same library gives the same work and alignment:",
    ),
    "verify_note": (
        "任一文件改动一个字节，其摘要即不同，核验即失败并指出文件与检查项。",
        "Changing one byte of any file changes its digest; verification then fails and names the file "
        "and the check.",
    ),
    "footer": (
        "本报告由融信平台根据存证数据自动生成；图示用于说明，证明力以摘要、签名与回执为准。",
        "Generated by Rongxin from the recorded evidence; the figures illustrate, the digests, "
        "signature and receipts prove.",
    ),
}

# Field names of the match evidence, for the evidence table.
_FIELDS: dict[str, tuple[str, str]] = {
    "path": ("匹配方式", "method"),
    "hamming": ("哈希汉明距离", "hash Hamming distance"),
    "hash_threshold": ("哈希阈值", "hash threshold"),
    "transform": ("翻转/旋转", "flip or rotation"),
    "region": ("区域（副本像素）", "region (copy pixels)"),
    "query_size": ("副本尺寸", "copy size"),
    "item": ("作品帧", "work frame"),
    "fpr_target": ("误报率目标", "false-positive target"),
    "inliers": ("几何一致特征点", "geometric inliers"),
    "inlier_threshold": ("特征点阈值", "inlier threshold"),
    "rotation_deg": ("旋转（度）", "rotation (degrees)"),
    "scale": ("缩放", "scale"),
    "mirrored": ("镜像", "mirrored"),
    "query_frame": ("副本帧", "copy frame"),
    "query_start": ("副本起点（秒）", "copy start (s)"),
    "query_end": ("副本终点（秒）", "copy end (s)"),
    "ref_start": ("作品起点（秒）", "work start (s)"),
    "ref_end": ("作品终点（秒）", "work end (s)"),
    "speed": ("速度比", "speed"),
    "pitch": ("音高比", "pitch"),
    "offset_accuracy": ("偏移精度（秒）", "offset accuracy (s)"),
    "votes": ("指纹投票", "landmark votes"),
    "verified_frames": ("逐峰验证帧", "frames verified"),
    "reference_frames": ("作品帧（有峰）", "work frames with peaks"),
    "chance_frames": ("偶然验证帧期望", "frames expected by chance"),
    "peak_significance": ("峰值显著性（数量级）", "peak significance (decades)"),
    "spectral_evidence": ("频谱显著性（数量级）", "spectral evidence (decades)"),
    "verified_peaks": ("验证峰数", "peaks verified"),
    "reference_peaks": ("作品峰数", "work peaks"),
    "layer": ("判定规则", "decision rule"),
    "bass_significance": ("低频层显著性", "bass significance"),
    "main_significance": ("主层显著性", "main significance"),
    "found_by": ("发现依据", "found by"),
    "flip": ("镜像", "mirrored"),
    "crop_box": ("去黑边画面", "picture without bars"),
    "matched_frames": ("匹配帧", "frames matched"),
    "compared_frames": ("比较帧", "frames compared"),
    "frame_bits": ("帧阈值（位）", "frame threshold (bits)"),
    "view": ("画面形式", "view"),
    "pip_box": ("画中画区域", "inset box"),
}


def words(lang: str) -> dict[str, str]:
    """Every phrase of the report in ``lang`` (``"zh"`` or ``"en"``).

    Raises
    ------
    ReportError
        Another language.
    """
    if lang not in LANGUAGES:
        raise ReportError(f"unknown report language {lang!r}; use 'zh' (the default) or 'en'")
    i = LANGUAGES.index(lang)
    return {key: pair[i] for key, pair in _TEXT.items()}


def field_name(key: str, lang: str) -> str:
    """The report's name for an evidence field (the key itself when unknown).

    Examples
    --------
    >>> field_name("inliers", "zh"), field_name("inliers", "en"), field_name("x", "en")
    ('几何一致特征点', 'geometric inliers', 'x')
    """
    pair = _FIELDS.get(key)
    return key if pair is None else pair[LANGUAGES.index(lang)]
