#!/usr/bin/env python3
"""Reads an `anx journal export --format parquet` directory the way a user
would, with DuckDB, pandas and polars, and no casts: decimals come out as
decimals (and sum exactly to the report's net PnL), times as UTC timestamps,
days as dates, symbols as categories, a decision's risk checks as records.

Usage: parquet_readers.py OUTDIR NET_PNL DP
  OUTDIR   the export's directory (it must hold trades.parquet)
  NET_PNL  the report's net PnL (`anx journal replay DIR --json`: report.net_pnl),
           which the report rounds to DP places (half to even); the sums here
           are exact, and must round to it

Prints `<reader>: ok` for each reader and exits 0; on the first finding that
is not as promised (or a module that is missing) it says which and exits 1.
Run by tests/parquet_export.rs.
"""

import sys
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path


def check(condition, what):
    if not condition:
        print(f"FAILED: {what}")
        sys.exit(1)


def rounds_to(total, net_pnl, dp):
    """Whether the exact `total` rounds to the report's `net_pnl` at `dp` places."""
    return total.quantize(Decimal(1).scaleb(-dp), rounding=ROUND_HALF_EVEN) == net_pnl


def duckdb_reads(out, net_pnl, dp):
    import duckdb

    con = duckdb.connect()

    def one(sql, path):
        return con.execute(sql, [str(out / path)]).fetchone()

    def types(path):
        rows = con.execute("describe select * from read_parquet(?)", [str(out / path)])
        return {row[0]: row[1] for row in rows.fetchall()}

    total, total_type = one("select sum(net_pnl), typeof(sum(net_pnl)) from read_parquet(?)", "trades.parquet")
    check(total_type.startswith("DECIMAL(38,"), f"duckdb: sum(net_pnl) is {total_type}, not a DECIMAL")
    check(isinstance(total, Decimal), f"duckdb: sum(net_pnl) came out as {type(total)}")
    check(rounds_to(total, net_pnl, dp), f"duckdb: sum(net_pnl) {total} is not the report's {net_pnl}")
    trades = types("trades.parquet")
    check(trades["entry_time"] == "TIMESTAMP WITH TIME ZONE", f"duckdb: entry_time is {trades['entry_time']}")
    check(trades["symbol"] == "VARCHAR", f"duckdb: symbol is {trades['symbol']}")
    check(trades["hold_hours"] == "DOUBLE", f"duckdb: hold_hours is {trades['hold_hours']}")
    candles = types("candle.parquet")
    check(candles["market_time"] == "TIMESTAMP WITH TIME ZONE", f"duckdb: market_time is {candles['market_time']}")
    check(candles["close"].startswith("DECIMAL(38,"), f"duckdb: close is {candles['close']}")
    check(candles["seq"] == "UBIGINT", f"duckdb: seq is {candles['seq']}")
    check(types("equity.parquet")["date"] == "DATE", "duckdb: equity date is not a DATE")
    # A glass box's records unnest without a JSON function.
    code, passed = one(
        "select c.code, c.passed from (select unnest(risk_checks) as c from read_parquet(?)) limit 1",
        "decision.parquet",
    )
    check(isinstance(code, str) and isinstance(passed, bool), f"duckdb: a risk check is {code!r}, {passed!r}")
    print("duckdb: ok")


def pandas_reads(out, net_pnl, dp):
    import pandas as pd

    trades = pd.read_parquet(out / "trades.parquet")
    check(str(trades["entry_time"].dtype) == "datetime64[ms, UTC]", f"pandas: entry_time is {trades['entry_time'].dtype}")
    check(all(isinstance(v, Decimal) for v in trades["net_pnl"]), "pandas: net_pnl values are not Decimals")
    total = sum(trades["net_pnl"], Decimal(0))
    check(rounds_to(total, net_pnl, dp), f"pandas: net_pnl sums to {total}, not the report's {net_pnl}")
    check(str(trades["symbol"].dtype) == "category", f"pandas: symbol is {trades['symbol'].dtype}")
    candles = pd.read_parquet(out / "candle.parquet")
    check(str(candles["market_time"].dtype) == "datetime64[ms, UTC]", f"pandas: market_time is {candles['market_time'].dtype}")
    check(isinstance(candles["close"].iloc[0], Decimal), "pandas: close is not a Decimal")
    decisions = pd.read_parquet(out / "decision.parquet")
    checks = decisions["risk_checks"].dropna()
    check(len(checks) > 0 and isinstance(checks.iloc[0][0]["passed"], bool), "pandas: risk checks are not records")
    print("pandas: ok")


def polars_reads(out, net_pnl, dp):
    import polars as pl

    trades = pl.read_parquet(out / "trades.parquet")
    schema = trades.schema
    check(schema["entry_time"] == pl.Datetime("ms", "UTC"), f"polars: entry_time is {schema['entry_time']}")
    check(isinstance(schema["net_pnl"], pl.Decimal), f"polars: net_pnl is {schema['net_pnl']}")
    total = trades["net_pnl"].sum()
    check(isinstance(total, Decimal), f"polars: sum(net_pnl) came out as {type(total)}")
    check(rounds_to(total, net_pnl, dp), f"polars: net_pnl sums to {total}, not the report's {net_pnl}")
    check(str(schema["symbol"]).startswith("Categorical"), f"polars: symbol is {schema['symbol']}")
    equity = pl.read_parquet(out / "equity.parquet")
    check(equity.schema["date"] == pl.Date, f"polars: date is {equity.schema['date']}")
    check(isinstance(equity.schema["drawdown_pct"], pl.Decimal), "polars: drawdown_pct is not a Decimal")
    decisions = pl.read_parquet(out / "decision.parquet")
    risk = decisions.schema["risk_checks"]
    check(isinstance(risk, pl.List) and isinstance(risk.inner, pl.Struct), f"polars: risk_checks is {risk}")
    print("polars: ok")


def main():
    if len(sys.argv) != 4:
        print(__doc__)
        sys.exit(2)
    out, net_pnl, dp = Path(sys.argv[1]), Decimal(sys.argv[2]), int(sys.argv[3])
    check((out / "trades.parquet").is_file(), f"{out}/trades.parquet is missing")
    for reader in (duckdb_reads, pandas_reads, polars_reads):
        try:
            reader(out, net_pnl, dp)
        except ImportError as error:
            check(False, f"{error}: python3 -m pip install duckdb pandas polars pyarrow")


if __name__ == "__main__":
    main()
