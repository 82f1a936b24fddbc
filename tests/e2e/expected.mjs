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
import { expect, findingKey } from './harness.mjs';

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

// ---- issue 3: Intercom checks beyond consent ----------------------------------
// Everything is granted in these scenarios, so only the policy under test can
// produce findings.
//   * region_not_allowed: one finding per distinct Intercom request (host +
//     path) to a host the catalog maps to a region the policy does not allow;
//     evidence.region is that region. Hosts without a known region
//     (widget.intercom.io, js.intercomcdn.com) are never flagged.
//   * identity_unverified: one finding per place the identity was given,
//     evidence { kind: 'global', name: 'intercomSettings' | "Intercom('boot')"
//     | "Intercom('update')" }; never the values.
//   * page_out_of_scope: exactly one per vendor and page view (its evidence is
//     whatever showed the vendor running first; the scenario does not pin it).
//   * cookie_lifetime_exceeds_policy: one per vendor cookie whose remaining
//     lifetime exceeds policy.cookie_max_days; evidence.days is that lifetime.

/** Intercom on its US region while the policy allows only `eu`. */
export function regionNotAllowed({ api = 'api-iam.intercom.io', events = true } = {}) {
  const paths = ['launcher_settings', 'ping', 'metrics', ...(events ? ['events'] : [])];
  return paths.map((p) => expect.request('region_not_allowed', api, `/messenger/web/${p}`, FRAME));
}

/** Intercom identified a user without user_hash / intercom_user_jwt, at `where`. */
export function identityUnverified(where) {
  return [expect.global('identity_unverified', where)];
}

/** policy.cookie_max_days: 30 — Intercom's 9-month cookies, not its 1-week session cookie. */
export function cookieLifetimeExceeded({ app }) {
  return [
    expect.cookie('cookie_lifetime_exceeds_policy', `intercom-id-${app}`),
    expect.cookie('cookie_lifetime_exceeds_policy', `intercom-device-id-${app}`),
  ];
}

// ---- issue 4: consent read from the page's CMP ---------------------------------
// The CMP scenarios (cmp-npm.test.mjs, cmp-fixtures.test.mjs) reuse
// loadedWithoutConsent and withdrawnAndIgnored: the monitor must reach the
// same findings from the CMP's own API, events and cookies as from
// tagwatch('consent'). Their consent.source is the CMP's id.
//   * The US page (IAB GPP, usnat) runs Intercom under `messenger:
//     'necessary'`: an opt-out of sale / sharing / targeted advertising
//     refuses `marketing` only, so only the tracking endpoints count.
//   * consent_signal_mismatch: one per (vendor, signal, claimed type); the
//     evidence is { kind: 'signal', signal: 'gcs' | 'consent_update' |
//     'consent_default', claimed, host, path } (host and path of the hit,
//     none for a dataLayer command).

/** usnat opted out (marketing refused), Messenger necessary: Intercom's tracking. */
export function trackingWithoutConsent({ api = 'api-iam.intercom.io' } = {}) {
  return ['ping', 'metrics', 'events'].map((p) => expect.request('tracking_before_consent', api, `/messenger/web/${p}`, FRAME));
}

/** usnat: not opted out, then opted out; Intercom left running, update + trackEvent after the grace period. */
export function trackingWithdrawnAndIgnored({ api = 'api-iam.intercom.io' } = {}) {
  return ['ping', 'events'].map((p) => expect.request('request_after_withdrawal', api, `/messenger/web/${p}`, FRAME));
}

/** A Google tag's claim (Consent Mode) that the CMP does not back. */
export function signalMismatch({ vendor, signal, claimed, host = '', path = '' }) {
  return findingKey({ type: 'consent_signal_mismatch', vendor, evidence: { kind: 'signal', signal, claimed, host, path } });
}

/** A GA4 hit (`/g/collect` on `host`) while analytics is not granted. */
export function ga4TrackingWithoutConsent({ host = 'region1.google-analytics.com' } = {}) {
  return findingKey({ type: 'tracking_before_consent', vendor: 'ga4', evidence: { kind: 'request', host, path: '/g/collect', frame: 'top' } });
}
