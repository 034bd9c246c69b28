"""Seller authorisation per shop: tokens from the code exchange, encrypted at rest, refreshed before they expire.

``crypto`` seals tokens (AES-256-GCM, ``KARYA_TOKEN_KEY``), ``store`` keeps them in ``gateway.shop_tokens`` and
hands them to the API clients, ``auth`` speaks the channels' token endpoints, ``refresher`` is the gateway's
background task, ``cli`` is ``karya shops``.
"""
