//! The strategy and risk rules of the Rust-only mode: the same rules as the Python strategy
//! (examples/python/strategy.py) and the OCaml risk engine (ocaml/demo/risk.ml), so that
//! `--strategy rust` and `--risk rust` run a comparable pipeline.

use std::collections::{HashMap, VecDeque};

use mycelium_contracts::{Order, TradeTick};

/// Prices in the moving average.
pub const WINDOW: usize = 20;
/// An order whose qty * limit_price is above this is refused.
pub const MAX_ORDER_NOTIONAL: f64 = 250_000.0;
/// An order that would take a symbol's net position, valued at the order's price, above this
/// (long or short) is refused.
pub const MAX_POSITION_NOTIONAL: f64 = 1_000_000.0;

pub const BUY: u8 = 0;
pub const SELL: u8 = 1;

#[derive(Default)]
struct SymbolState {
    prices: VecDeque<f64>,
    total: f64,
    above: bool,
    since_order: u64,
}

impl SymbolState {
    /// Adds `price` to the window and returns the window's average.
    fn average_after(&mut self, price: f64) -> f64 {
        if self.prices.len() == WINDOW {
            self.total -= self.prices.pop_front().unwrap_or(0.0);
        }
        self.prices.push_back(price);
        self.total += price;
        self.total / self.prices.len() as f64
    }
}

/// Sends an order when a symbol's price crosses its moving average (a buy when it moved above,
/// a sell when it moved below), or after `order_every` ticks of the symbol without one.
pub struct MovingAverageCross {
    order_every: u64,
    symbols: HashMap<String, SymbolState>,
    next_order_id: u64,
}

impl MovingAverageCross {
    /// `order_every` 0 sends orders on crossings only.
    pub fn new(order_every: u64) -> MovingAverageCross {
        MovingAverageCross {
            order_every,
            symbols: HashMap::new(),
            next_order_id: 1,
        }
    }

    /// The order this tick triggers, if any; `now_ns` becomes its timestamp.
    pub fn on_tick(&mut self, tick: &TradeTick, now_ns: u64) -> Option<Order> {
        let state = self.symbols.entry(tick.symbol.clone()).or_default();
        let average = state.average_after(tick.price);
        let was_above = std::mem::replace(&mut state.above, tick.price > average);
        state.since_order += 1;
        let crossed = state.prices.len() == WINDOW && was_above != state.above;
        let quiet = self.order_every > 0 && state.since_order >= self.order_every;
        if !(crossed || quiet) {
            return None;
        }
        state.since_order = 0;
        let order = Order {
            order_id: self.next_order_id,
            symbol: tick.symbol.clone(),
            side: if state.above { BUY } else { SELL },
            qty: tick.size.max(1),
            limit_price: tick.price,
            ts_ns: now_ns,
        };
        self.next_order_id += 1;
        Some(order)
    }
}

/// Per-order notional and per-symbol position limits. Approved orders count as filled at once.
#[derive(Default)]
pub struct RiskLimits {
    positions: HashMap<String, i64>,
}

impl RiskLimits {
    /// `Ok` approves (and moves the position); `Err` carries the refusal's reason.
    pub fn decide(&mut self, order: &Order) -> Result<(), String> {
        let notional = f64::from(order.qty) * order.limit_price;
        let held = self.positions.get(&order.symbol).copied().unwrap_or(0);
        let qty = i64::from(order.qty);
        let after = if order.side == BUY {
            held + qty
        } else {
            held - qty
        };
        let exposure = (after as f64 * order.limit_price).abs();
        if notional > MAX_ORDER_NOTIONAL {
            return Err(format!(
                "notional {notional:.0} over limit {MAX_ORDER_NOTIONAL:.0}"
            ));
        }
        if exposure > MAX_POSITION_NOTIONAL {
            return Err(format!(
                "position {} {exposure:.0} over limit {MAX_POSITION_NOTIONAL:.0}",
                order.symbol
            ));
        }
        self.positions.insert(order.symbol.clone(), after);
        Ok(())
    }

    /// Net units held in `symbol`.
    #[cfg(test)]
    pub fn position(&self, symbol: &str) -> i64 {
        self.positions.get(symbol).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tick(symbol: &str, price: f64, size: u32) -> TradeTick {
        TradeTick {
            symbol: symbol.into(),
            price,
            size,
            ts_ns: 0,
            side: 0,
        }
    }

    fn order(symbol: &str, side: u8, qty: u32, limit_price: f64) -> Order {
        Order {
            order_id: 1,
            symbol: symbol.into(),
            side,
            qty,
            limit_price,
            ts_ns: 0,
        }
    }

    #[test]
    fn a_price_crossing_its_average_sends_an_order_on_the_side_of_the_move() {
        let mut s = MovingAverageCross::new(0);
        for _ in 0..WINDOW {
            assert!(
                s.on_tick(&tick("A", 100.0, 3), 1).is_none(),
                "a flat price never crosses"
            );
        }
        let up = s
            .on_tick(&tick("A", 101.0, 3), 7)
            .expect("moved above its average");
        assert_eq!(
            (up.side, up.qty, up.limit_price, up.ts_ns),
            (BUY, 3, 101.0, 7)
        );
        assert!(
            s.on_tick(&tick("A", 102.0, 3), 8).is_none(),
            "still above: no new crossing"
        );
        let down = s
            .on_tick(&tick("A", 90.0, 0), 9)
            .expect("moved below its average");
        assert_eq!(
            (down.side, down.qty),
            (SELL, 1),
            "a zero size still orders one unit"
        );
        assert_eq!(down.order_id, up.order_id + 1);
    }

    #[test]
    fn symbols_are_averaged_separately() {
        let mut s = MovingAverageCross::new(0);
        for _ in 0..WINDOW {
            s.on_tick(&tick("A", 100.0, 1), 0);
            s.on_tick(&tick("B", 5.0, 1), 0);
        }
        // 50 is far above B's average but far below A's.
        let b = s.on_tick(&tick("B", 50.0, 1), 0).expect("B crossed up");
        assert_eq!((b.symbol.as_str(), b.side), ("B", BUY));
        assert!(s.on_tick(&tick("A", 100.0, 1), 0).is_none());
    }

    #[test]
    fn a_quiet_symbol_orders_every_nth_tick() {
        let mut s = MovingAverageCross::new(5);
        let sent: Vec<usize> = (1..=15)
            .filter(|_| s.on_tick(&tick("A", 100.0, 1), 0).is_some())
            .collect();
        assert_eq!(sent.len(), 3);
    }

    #[test]
    fn orders_over_the_notional_limit_are_refused_with_the_figures() {
        let mut r = RiskLimits::default();
        let why = r
            .decide(&order("BTC-USD", BUY, 4, 64_000.0))
            .expect_err("256k > 250k");
        assert_eq!(why, "notional 256000 over limit 250000");
        assert_eq!(
            r.position("BTC-USD"),
            0,
            "a refused order does not move the position"
        );
        r.decide(&order("BTC-USD", BUY, 3, 64_000.0))
            .expect("192k is within the limit");
        assert_eq!(r.position("BTC-USD"), 3);
    }

    #[test]
    fn positions_are_limited_either_way_and_sells_reduce_them() {
        let mut r = RiskLimits::default();
        for _ in 0..4 {
            r.decide(&order("ACME", BUY, 2_000, 100.0))
                .expect("up to 800k held");
        }
        let why = r
            .decide(&order("ACME", BUY, 2_001, 100.0))
            .expect_err("1.0001M > 1M");
        assert_eq!(why, "position ACME 1000100 over limit 1000000");
        r.decide(&order("ACME", SELL, 2_000, 100.0))
            .expect("selling reduces the position");
        assert_eq!(r.position("ACME"), 6_000);
        for _ in 0..8 {
            r.decide(&order("ACME", SELL, 2_000, 100.0))
                .expect("down to -10k units = -1M");
        }
        assert_eq!(r.position("ACME"), -10_000);
        assert!(
            r.decide(&order("ACME", SELL, 1, 100.0)).is_err(),
            "short side limited too"
        );
        r.decide(&order("GLOBEX", SELL, 1, 100.0))
            .expect("other symbols have their own");
    }
}
