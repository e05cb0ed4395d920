// The anx HTML report's script (inlined into the report by src/html_charts.rs,
// after TradingView's Lightweight Charts). It draws the charts from the JSON
// block `anx-chart-data`, links each trade marker and trade row to the trade's
// decision trail, and opens a trail when the page's address names it. It makes
// no network request. `window.anxReport` holds the charts for the console and
// for the browser test (tests/html_report_browser.rs).
(function () {
  'use strict';
  const LWC = window.LightweightCharts;
  const data = JSON.parse(document.getElementById('anx-chart-data').textContent);
  const report = { price: [], equity: null, drawdown: null, data: data };
  window.anxReport = report;

  // A marker within this many pixels of a click or of the pointer is hit.
  const HIT_PX = 10;
  const UP = '#26a69a', DOWN = '#ef5350', WIN = '#067647', LOSS = '#b42318';
  const ENTRY = '#1f6feb', TAKE_PROFIT = '#067647', STOP = '#b42318';

  // UTC times, as the rest of the report prints them.
  function utc(seconds, withTime) {
    const iso = new Date(seconds * 1000).toISOString();
    return withTime ? iso.slice(0, 16).replace('T', ' ') : iso.slice(0, 10);
  }

  // A number with `decimals` decimals, never "-0.00".
  function fixed(value, decimals) {
    const text = value.toFixed(decimals);
    return /^-0\.?0*$/.test(text) ? text.slice(1) : text;
  }

  function chartOptions(withTime) {
    return {
      autoSize: true,
      layout: {
        attributionLogo: false, // credited in the page's footer instead
        background: { type: 'solid', color: '#ffffff' },
        textColor: '#1b1f24',
        fontSize: 12,
        fontFamily: 'system-ui, sans-serif',
      },
      grid: { vertLines: { color: '#f0f2f5' }, horzLines: { color: '#f0f2f5' } },
      // One width for every price scale, so that equity and drawdown line up.
      rightPriceScale: { borderColor: '#dddddd', minimumWidth: 88 },
      // A long run fits the width when the whole of it is shown.
      timeScale: { borderColor: '#dddddd', timeVisible: withTime, secondsVisible: false, minBarSpacing: 0.05 },
      crosshair: { mode: LWC.CrosshairMode.Normal },
      localization: { timeFormatter: (t) => utc(t, withTime) },
    };
  }

  function legend(el) {
    const div = document.createElement('div');
    div.className = 'legend';
    el.appendChild(div);
    return div;
  }

  function goToTrail(id) {
    const hash = '#trail-' + id;
    if (location.hash !== hash) location.hash = hash;
    openTrail();
  }

  // Opens (and shows) the trail the address names, if any.
  function openTrail() {
    const id = decodeURIComponent(location.hash.slice(1));
    if (!id.startsWith('trail-')) return;
    const details = document.getElementById(id);
    if (!details || details.tagName !== 'DETAILS') return;
    document.querySelectorAll('details.hit').forEach((d) => d.classList.remove('hit'));
    details.open = true;
    details.classList.add('hit');
    details.scrollIntoView({ block: 'start' });
  }

  // Draws each trade's take-profit and stop as a dashed segment from its
  // entry bar to its exit bar, and a dotted line from entry to exit: a series
  // primitive, so it follows zoom, pan and the price scale.
  class TradeLevels {
    constructor(trades) {
      this.trades = trades;
      const renderer = { draw: (target) => target.useMediaCoordinateSpace((s) => this.draw(s.context)) };
      this.views = [{ renderer: () => renderer, zOrder: () => 'top' }];
    }
    attached(param) { this.chart = param.chart; this.series = param.series; }
    detached() { this.chart = null; this.series = null; }
    updateAllViews() {}
    paneViews() { return this.views; }
    draw(ctx) {
      if (!this.chart) return;
      const time = this.chart.timeScale();
      const visible = time.getVisibleLogicalRange();
      if (!visible) return;
      const half = Math.max(2, (time.logicalToCoordinate(1) - time.logicalToCoordinate(0)) / 2);
      const y = (p) => (p == null ? null : this.series.priceToCoordinate(p));
      ctx.save();
      ctx.lineWidth = 1.5;
      for (const t of this.trades) {
        if (t.exit_i < visible.from - 1 || t.entry_i > visible.to + 1) continue;
        const x1 = time.logicalToCoordinate(t.entry_i) - half;
        const x2 = time.logicalToCoordinate(t.exit_i) + half;
        ctx.setLineDash([5, 3]);
        for (const [price, color] of [[t.take_profit, TAKE_PROFIT], [t.stop, STOP]]) {
          const at = y(price);
          if (at == null) continue;
          ctx.strokeStyle = color;
          ctx.beginPath(); ctx.moveTo(x1, at); ctx.lineTo(x2, at); ctx.stroke();
        }
        const from = y(t.entry), to = y(t.exit);
        if (from != null && to != null) {
          ctx.setLineDash([1, 3]);
          ctx.strokeStyle = t.net < 0 ? LOSS : WIN;
          ctx.beginPath();
          ctx.moveTo(time.logicalToCoordinate(t.entry_i), from);
          ctx.lineTo(time.logicalToCoordinate(t.exit_i), to);
          ctx.stroke();
        }
      }
      ctx.restore();
    }
  }

  // Every marker's centre in the chart's own pixels, for hit tests.
  function markerPoints(entry) {
    const time = entry.chart.timeScale();
    const points = [];
    for (const t of entry.symbol.trades) {
      for (const [i, p, kind] of [[t.entry_i, t.entry, 'entry'], [t.exit_i, t.exit, 'exit']]) {
        const x = time.logicalToCoordinate(i), y = entry.series.priceToCoordinate(p);
        if (x != null && y != null) points.push({ x: x, y: y, trade: t, kind: kind });
      }
    }
    return points;
  }

  function nearestMarker(entry, point) {
    let best = null, bestDistance = HIT_PX;
    for (const m of markerPoints(entry)) {
      const distance = Math.hypot(m.x - point.x, m.y - point.y);
      if (distance <= bestDistance) { best = m; bestDistance = distance; }
    }
    return best;
  }

  function tradeText(t, decimals) {
    const net = (t.net < 0 ? '' : '+') + fixed(t.net, 2);
    return t.id + ': entry ' + fixed(t.entry, decimals) + ' → exit ' + fixed(t.exit, decimals) +
      ' (' + t.reason + ', net ' + net + '); stop ' + fixed(t.stop, decimals) +
      (t.take_profit == null ? '' : ', take-profit ' + fixed(t.take_profit, decimals)) +
      ' – click for its trail';
  }

  function barText(bar, decimals) {
    if (!bar) return '';
    const f = (v) => fixed(v, decimals);
    return 'O ' + f(bar.open) + '  H ' + f(bar.high) + '  L ' + f(bar.low) + '  C ' + f(bar.close);
  }

  function markersOf(symbol) {
    const markers = [];
    for (const t of symbol.trades) {
      markers.push({ time: t.entry_t, position: 'atPriceMiddle', price: t.entry, shape: 'arrowUp', color: ENTRY, id: t.id });
      markers.push({ time: t.exit_t, position: 'atPriceMiddle', price: t.exit, shape: 'arrowDown', color: t.net < 0 ? LOSS : WIN, id: t.id });
    }
    return markers.sort((a, b) => a.time - b.time);
  }

  function priceChart(el, symbol) {
    const chart = LWC.createChart(el, chartOptions(true));
    const series = chart.addSeries(LWC.CandlestickSeries, {
      upColor: UP, downColor: DOWN, borderVisible: false, wickUpColor: UP, wickDownColor: DOWN,
      priceLineVisible: false,
      priceFormat: { type: 'price', precision: symbol.precision, minMove: symbol.min_move },
    });
    series.setData(symbol.bars.map((b) => ({ time: b[0], open: b[1], high: b[2], low: b[3], close: b[4] })));
    LWC.createSeriesMarkers(series, markersOf(symbol));
    series.attachPrimitive(new TradeLevels(symbol.trades));
    const entry = { chart: chart, series: series, symbol: symbol, el: el };
    const text = legend(el);
    const idle = symbol.symbol + '  ' + barText(series.dataByIndex(symbol.bars.length - 1), symbol.precision);
    text.textContent = idle;
    chart.subscribeCrosshairMove((param) => {
      const hit = param.point ? nearestMarker(entry, param.point) : null;
      el.style.cursor = hit ? 'pointer' : '';
      if (hit) text.textContent = tradeText(hit.trade, symbol.precision);
      else if (param.time) text.textContent = symbol.symbol + '  ' + utc(param.time, true) + '  ' + barText(param.seriesData.get(series), symbol.precision);
      else text.textContent = idle;
    });
    chart.subscribeClick((param) => {
      const hit = param.point ? nearestMarker(entry, param.point) : null;
      const id = hit ? hit.trade.id : (typeof param.hoveredObjectId === 'string' ? param.hoveredObjectId : null);
      if (id) goToTrail(id);
    });
    chart.timeScale().fitContent();
    return entry;
  }

  function lineChart(el, points, kind) {
    const chart = LWC.createChart(el, chartOptions(false));
    const format = { type: 'custom', minMove: 0.01, formatter: (v) => fixed(v, 2) + (kind === 'drawdown' ? ' %' : '') };
    const series = kind === 'drawdown'
      ? chart.addSeries(LWC.BaselineSeries, {
        baseValue: { type: 'price', price: 0 }, priceFormat: format, lineWidth: 2,
        topLineColor: LOSS, topFillColor1: 'rgba(0,0,0,0)', topFillColor2: 'rgba(0,0,0,0)',
        bottomLineColor: LOSS, bottomFillColor1: 'rgba(180,35,24,0.05)', bottomFillColor2: 'rgba(180,35,24,0.3)',
      })
      : chart.addSeries(LWC.LineSeries, { color: ENTRY, lineWidth: 2, priceFormat: format });
    series.setData(points.map((p) => ({ time: p[0], value: p[1] })));
    const text = legend(el);
    const label = kind === 'drawdown' ? 'drawdown' : 'equity';
    const show = (time, value) => {
      text.textContent = value == null ? label : label + '  ' + utc(time, false) + '  ' + format.formatter(value);
    };
    const last = points[points.length - 1];
    const idle = () => (last ? show(last[0], last[1]) : show(null, null));
    idle();
    chart.subscribeCrosshairMove((param) => {
      const point = param.time ? param.seriesData.get(series) : null;
      if (point) show(param.time, point.value); else idle();
    });
    chart.timeScale().fitContent();
    return { chart: chart, series: series, el: el, legend: text };
  }

  // Zooming or panning one of equity and drawdown moves the other too.
  function linkTimeScales(a, b) {
    let busy = false;
    const follow = (from, to) => from.chart.timeScale().subscribeVisibleLogicalRangeChange((range) => {
      if (busy || !range) return;
      busy = true;
      to.chart.timeScale().setVisibleLogicalRange(range);
      busy = false;
    });
    follow(a, b);
    follow(b, a);
  }

  function resetButton(caption, entry) {
    if (!caption) return;
    const button = document.createElement('button');
    button.type = 'button';
    button.textContent = 'show all';
    button.addEventListener('click', () => entry.chart.timeScale().fitContent());
    caption.appendChild(button);
  }

  // In each trail, a button that zooms the trade's price chart onto it.
  function showOnChartButtons() {
    report.price.forEach((entry) => {
      for (const t of entry.symbol.trades) {
        const details = document.getElementById('trail-' + t.id);
        if (!details) continue;
        const button = document.createElement('button');
        button.type = 'button';
        button.className = 'show-on-chart';
        button.textContent = 'show on the ' + entry.symbol.symbol + ' chart';
        button.addEventListener('click', () => {
          const pad = Math.max(20, t.exit_i - t.entry_i);
          entry.chart.timeScale().setVisibleLogicalRange({ from: t.entry_i - pad, to: t.exit_i + pad });
          entry.el.scrollIntoView({ block: 'center' });
        });
        details.insertBefore(button, details.children[1] || null);
      }
    });
  }

  // A click anywhere on a trade's row opens its trail, as its link does.
  function linkRows() {
    document.querySelectorAll('a[href^="#trail-"]').forEach((a) => {
      const row = a.closest('tr');
      if (!row) return;
      row.classList.add('to-trail');
      row.addEventListener('click', (event) => {
        if (event.target.closest('a')) return;
        goToTrail(a.getAttribute('href').slice('#trail-'.length));
      });
    });
  }

  // The pixel centre of a trade's entry or exit marker in the viewport (for
  // tests and the console): null when it is not on the chart.
  report.markerInViewport = function (tradeId, kind) {
    for (const entry of report.price) {
      const m = markerPoints(entry).find((p) => p.trade.id === tradeId && p.kind === (kind || 'entry'));
      if (!m) continue;
      const box = entry.el.getBoundingClientRect();
      return { x: box.left + entry.el.clientLeft + m.x, y: box.top + entry.el.clientTop + m.y };
    }
    return null;
  };

  document.querySelectorAll('[data-chart="price"]').forEach((el) => {
    report.price.push(priceChart(el, data.symbols[Number(el.dataset.index)]));
  });
  const equityEl = document.getElementById('chart-equity');
  const drawdownEl = document.getElementById('chart-drawdown');
  if (equityEl) report.equity = lineChart(equityEl, data.equity, 'equity');
  if (drawdownEl) report.drawdown = lineChart(drawdownEl, data.drawdown, 'drawdown');
  if (report.equity && report.drawdown) linkTimeScales(report.equity, report.drawdown);
  report.price.forEach((entry, i) => resetButton(document.getElementById('caption-price-' + i), entry));
  showOnChartButtons();
  linkRows();
  window.addEventListener('hashchange', openTrail);
  openTrail();
})();
