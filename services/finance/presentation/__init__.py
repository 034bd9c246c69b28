"""How the finance workspace shows numbers, times and words: integer rupiah as ``Rp 1.234.567`` with Dr/Cr (D/K in
Bahasa Indonesia), instants in the lapas' own zone (WIB, WITA, WIT), a tiny message catalogue (``id`` default,
``en``), and exports of any table to CSV, XLSX and PDF. Pure functions: no database, no web framework."""
