"""The finance workspace's read API, ``/api/v1/…``: every module here that defines ``router`` is included by
:func:`services.finance.app.create_app`; its OpenAPI document is committed as ``schemas/openapi/finance.json``
(:func:`services.finance.api.openapi.openapi_document`, ``karya schemas gen``)."""
