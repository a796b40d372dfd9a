"""``spotkit serve``: an OpenAI-compatible front door to the queue and the store (docs/gateway.md).

Modules: `app` (the ASGI app and the synchronous route), `jobs_api` (asynchronous jobs, webhooks),
`intake` (keys, limits and uploads, per request), `service` (what a request does, without HTTP),
`routing` (fleet or metered API, and cost: pure), `uploads` (multipart streamed to disk),
`apikeys` (issue, list, revoke, authenticate), `responses` (OpenAI's formats and error shape),
`observe` (metrics, rate limits, access logs).
"""
