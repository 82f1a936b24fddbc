// The exact findings each scenario must produce, in one place.
//
// How the tests read docs/report-format.md (to agree with the monitor's
// engineer; change here, not in the scenarios):
//   * One stored finding per distinct (type, vendor, evidence); evidence is
//     identified by kind + host + path + frame (request), cookie name
//     (cookie), or name (global, dom). `count` may be > 1.
//   * script_before_consent is raised for every Intercom script request
//     (the loader on the top page — from widget.intercom.io, or from a
//     first-party URL when it is the SDK's script#_intercom_npm_loader —
//     and the frame-modern/vendor-modern bundles inside #intercom-frame)
//     AND for the global `Intercom.booted` (the snippet's queue stub alone
//     does not count) AND the DOM marker `#intercom-frame`, whenever
//     `functional` is not granted. The Messenger's own API calls that are
//     not tracking (launcher_settings) raise nothing: they are not scripts,
//     and their purpose (messenger) is covered by the above.
//     Evidence names as the monitor reports them (core/src/catalog.rs
//     `globals` / `dom_ids`, src/observe.rs).
//   * cookie_before_consent: intercom-id-<app>, intercom-device-id-<app>,
//     intercom-session-<app> (full cookie name, value never).
//   * tracking_before_consent: ping, metrics, events (all from
//     #intercom-frame) when `marketing` is not granted.
//   * After a withdrawal, leftovers are reported ONLY as
//     cookie_after_withdrawal / request_after_withdrawal (not also as
//     *_before_consent).
//   * With GPC on and everything granted, every marketing-purpose request
//     (ping, metrics, events) is gpc_ignored; nothing else.
//   * identity_unverified is not expected: the pages set user_hash.
import { expect } from './harness.mjs';

const FRAME = '#intercom-frame';
const pathOf = (src) => new URL(src).pathname;

/**
 * Intercom loaded and booted with neither functional nor marketing consent.
 * loader: 'widget' (https://widget.intercom.io/widget/<app>) or
 * 'first-party' (the SDK's widgetUrl, https://shop.example/intercom-shim.js).
 */
export function loadedWithoutConsent({ fake, app, api = 'api-iam.intercom.io', loader = 'widget', events = true }) {
  const keys = [
    expect.request('script_before_consent', 'js.intercomcdn.com', pathOf(fake.frameSrc), FRAME),
    expect.request('script_before_consent', 'js.intercomcdn.com', pathOf(fake.vendorSrc), FRAME),
    expect.global('script_before_consent', 'Intercom.booted'),
    expect.dom('script_before_consent', '#intercom-frame'),
    expect.cookie('cookie_before_consent', `intercom-id-${app}`),
    expect.cookie('cookie_before_consent', `intercom-device-id-${app}`),
    expect.cookie('cookie_before_consent', `intercom-session-${app}`),
    expect.request('tracking_before_consent', api, '/messenger/web/ping', FRAME),
    expect.request('tracking_before_consent', api, '/messenger/web/metrics', FRAME),
  ];
  if (loader === 'widget') keys.push(expect.request('script_before_consent', 'widget.intercom.io', `/widget/${app}`, 'top'));
  if (loader === 'first-party') keys.push(expect.request('script_before_consent', 'shop.example', '/intercom-shim.js', 'top'));
  if (events) keys.push(expect.request('tracking_before_consent', api, '/messenger/web/events', FRAME));
  return keys;
}

/** Everything granted, but navigator.globalPrivacyControl is true. */
export function gpcIgnored({ app, api = 'api-iam.intercom.io', events = true }) {
  void app;
  const keys = [
    expect.request('gpc_ignored', api, '/messenger/web/ping', FRAME),
    expect.request('gpc_ignored', api, '/messenger/web/metrics', FRAME),
  ];
  if (events) keys.push(expect.request('gpc_ignored', api, '/messenger/web/events', FRAME));
  return keys;
}

/** Granted, then functional+marketing withdrawn; the site also called Intercom('shutdown'). */
export function withdrawnWithShutdown({ app }) {
  return [
    expect.cookie('cookie_after_withdrawal', `intercom-id-${app}`),
    expect.cookie('cookie_after_withdrawal', `intercom-device-id-${app}`),
  ];
}

/** Granted, then withdrawn without shutdown; Intercom('update') + trackEvent after the grace period. */
export function withdrawnAndIgnored({ app, api = 'api-iam.intercom.io' }) {
  return [
    expect.cookie('cookie_after_withdrawal', `intercom-id-${app}`),
    expect.cookie('cookie_after_withdrawal', `intercom-device-id-${app}`),
    expect.cookie('cookie_after_withdrawal', `intercom-session-${app}`),
    expect.request('request_after_withdrawal', api, '/messenger/web/ping', FRAME),
    expect.request('request_after_withdrawal', api, '/messenger/web/events', FRAME),
  ];
}
