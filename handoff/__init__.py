"""Agent handoff: the screen pop an agent sees when a call from the IVR rings on their phone.

- ``handoff.pop``: ``build_pop(context) -> ScreenPop``, pure and fast, at the moment of transfer
- ``handoff.rules``: the deterministic wording (labels, 情况/已办理/待处理/情绪, the ticket)
- ``handoff.service``: ``HandoffService`` (the session's ``HandoffSink``; the AMI watcher that
  offers the pop to the agent on ``AgentCalled``; desktop fan-out; the LLM summary tasks)
- ``handoff.store``: pops in Redis (keys, channels, one bounded writer)
- ``handoff.summary``: the LLM summary over an OpenAI-compatible chat endpoint
- ``handoff.metrics``: counters and latency histograms for /metrics

The agent desktop itself (login, page, websocket) is ``ivr.web.agent``.
"""
