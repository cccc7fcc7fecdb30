"""The patient portal and staff pages: server-rendered, white-label, zh-CN by default with English.

`api.router` holds the pages (each tenant at /t/{tenant}/..., the default tenant also at /); `service`
holds registration and the helpers pages share (contrast-safe colours, lab trend charts); `i18n` the
Babel catalogs.
"""
