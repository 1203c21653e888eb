"""A deterministic set of a few hundred Chinese and English sentences for training the tiny tokenizer."""

from __future__ import annotations

import itertools

_EN_SUBJECTS = [
    "The app", "Our team", "The sync engine", "A new employee", "The manager", "Every user",
    "The search index", "The support desk", "The vector database", "This policy",
]
_EN_VERBS = [
    "stores", "encrypts", "exports", "reviews", "approves", "retrieves", "updates", "explains",
    "ranks", "deletes",
]
_EN_OBJECTS = [
    "notes offline.", "annual leave requests.", "documents in the cloud.", "the remote work schedule.",
    "conflicts with a vector clock.", "chunks by their similarity.", "a backup every night.",
    "questions about billing.", "the onboarding checklist.", "passwords securely.",
]
_ZH_SUBJECTS = [
    "应用程序", "我们的团队", "同步引擎", "新员工", "经理", "每位用户", "搜索索引", "客服", "向量数据库", "本政策",
]
_ZH_VERBS = ["保存", "加密", "导出", "审核", "批准", "检索", "更新", "解释", "排序", "删除"]
_ZH_OBJECTS = [
    "离线笔记。", "年假申请。", "云端文档。", "远程办公安排。", "冲突解决的记录。", "相似的文本片段。",
    "每晚的备份。", "关于账单的问题。", "入职清单。", "安全的密码。",
]
_EXTRA = [
    "我喜欢看书。", "阅读使我快乐。", "How are you?", "What's up?", "今天天气很好，我们去公园散步吧！",
    "Retrieval augmented generation answers questions from your own documents.",
    "检索增强生成根据你自己的文档回答问题；", "员工每年享有十五天带薪年假。",
    "Employees may work remotely up to three days per week.", "请在每月五号之前提交报销单据？",
    "The quick brown fox jumps over the lazy dog.", "机器学习模型需要大量的训练数据。",
    "Hybrid search combines dense and sparse scores.", "稠密向量与稀疏向量的混合检索。",
    "Version 2.4 fixed a crash when importing Markdown files.", "数字 0 1 2 3 4 5 6 7 8 9 和符号 % $ # @ !",
]


def training_sentences() -> list[str]:
    """Return ~400 sentences: English and Chinese subject-verb-object combinations plus fixed extras."""
    out: list[str] = list(_EXTRA)
    for i, (s, v, o) in enumerate(itertools.product(_EN_SUBJECTS, _EN_VERBS, _EN_OBJECTS)):
        if i % 5 == 0:
            out.append(f"{s} {v} {o}")
    for i, (s, v, o) in enumerate(itertools.product(_ZH_SUBJECTS, _ZH_VERBS, _ZH_OBJECTS)):
        if i % 5 == 0:
            out.append(f"{s}{v}{o}")
    return out
