// The passkey step of Custos's approval and enrolment pages (pages/renderApprovalPage.ts,
// renderEnrollmentPage.ts). Served by the kernel (/assets/passkey-<hash>.js) and loaded with the
// page's CSP nonce right after @simplewebauthn/browser's bundle (global SimpleWebAuthnBrowser).
// It only runs the browser's passkey ceremony and puts its JSON answer into the page's own form:
// the kernel decides everything when the form is posted.
//
// The step is #passkey-step; its data-mode is `approve` (approval page: ask the kernel for this
// approval's challenge, answer it with the wallet's passkey), `create` (enrolment page: create a
// passkey) or `consent` (enrolment page of an authenticator app for a wallet that has a passkey: the
// code form, confirmed with that passkey). On the enrolment page, `data-consent` holds the options
// the wallet's passkey answers first when the new factor needs its consent. On the change page
// (pages/changePageRoutes.ts) it is `answer`: `data-options` holds the options the wallet's passkey
// answers (bound to that change and step), and the answer is posted. Its data-state is `loading`
// (as served), `ready`, `working` (the browser's passkey dialog is open), `submitting` (the form is
// being posted), `error` or `unsupported`, and #passkey-status says the same in words
// (a live region).
// biome-ignore lint/suspicious/noRedundantUseStrict: the browser runs this file as a classic script, not a module
'use strict';

(() => {
  const step = document.getElementById('passkey-step');
  if (step === null) return;
  const form = document.getElementById('passkey-form');
  const status = document.getElementById('passkey-status');
  const mode = step.dataset.mode;
  const approving = mode === 'approve' || mode === 'answer';
  const button = document.getElementById({ approve: 'passkey-approve', answer: 'passkey-approve', create: 'passkey-create', consent: 'passkey-confirm' }[mode]);
  if (form === null || status === null || button === null) return;
  const webauthn = window.SimpleWebAuthnBrowser;

  function show(state, message) {
    step.dataset.state = state;
    status.textContent = message;
  }

  if (webauthn === undefined || !webauthn.browserSupportsWebAuthn()) {
    show('unsupported', 'This browser cannot use passkeys. Open this page in a current browser on a device that has your passkey.');
    return;
  }

  /** What the kernel's refusal of a challenge means, in the page's words. */
  const CHALLENGE_REFUSALS = {
    approval_expired: 'This request has expired: it can no longer be approved.',
    approval_decided: 'This request was already decided. Reload the page to see how.',
    approval_rejected: 'This request was already rejected. Reload the page to see how.',
    approval_cancelled: 'The app cancelled this request: it can no longer be approved.',
    approval_not_found: 'This request is gone. Check the link you were given.',
    forbidden_origin: 'The signer refused this page’s request. Reload the page and try again.',
    factor_required: 'This wallet has no passkey to approve with.',
    passkeys_unavailable: 'Passkeys are not available on this signer.',
    sealed: 'The signer is sealed. Try again later.',
    overloaded: 'The signer is busy. Try again in a moment.',
  };

  /** Asks the kernel for this approval's challenge (the page's own form token proves the request is the page's). */
  async function challenge() {
    const body = new URLSearchParams({ csrf: form.elements.csrf.value, kind: 'passkey' });
    let response;
    try {
      response = await fetch(`${window.location.pathname}/challenge`, {
        method: 'POST',
        body,
        credentials: 'same-origin',
        cache: 'no-store',
        redirect: 'error',
        headers: { accept: 'application/json' },
      });
    } catch {
      throw new Error('The signer could not be reached. Check your connection and try again.');
    }
    let answer;
    try {
      answer = await response.json();
    } catch {
      answer = undefined;
    }
    if (!response.ok || answer === undefined || answer.options === undefined) {
      const code = answer?.error?.code;
      throw new Error(CHALLENGE_REFUSALS[code] ?? `The signer could not start the passkey step (${code ?? response.status}). Nothing was decided.`);
    }
    return answer.options;
  }

  /** The browser's refusal (SimpleWebAuthn's WebAuthnError wraps the DOMException as its cause), in plain words. */
  function messageOf(error) {
    const name = error?.cause?.name ?? error?.name;
    if (name === 'NotAllowedError' || name === 'AbortError')
      return approving
        ? 'The passkey step was cancelled or timed out. Nothing was decided. Press the button to try again.'
        : 'The passkey step was cancelled or timed out. Nothing was enrolled. Press the button to try again.';
    if (name === 'InvalidStateError') return 'This device already holds a passkey for this wallet. Nothing was created.';
    if (name === 'SecurityError') return 'The browser refused passkeys for this page’s address. Ask the signer’s operator.';
    if (name === 'NotSupportedError') return 'This device cannot make a passkey of a kind the signer accepts.';
    if (error instanceof Error && error.name === 'Error') return error.message;
    return `The passkey step failed (${name ?? 'unknown error'}). Press the button to try again.`;
  }

  button.addEventListener('click', async () => {
    // the code form (consent mode): the browser checks the code field before any passkey dialog
    // (create mode on a TOTP-only wallet's page: the current app's code field, checked the same way)
    if ((mode === 'consent' || mode === 'create') && !form.reportValidity()) return;
    button.disabled = true;
    show('working', 'Follow your browser’s passkey prompt.');
    try {
      if (mode === 'answer') {
        form.elements.proof.value = JSON.stringify(await webauthn.startAuthentication({ optionsJSON: JSON.parse(step.dataset.options) }));
      } else if (approving) {
        form.elements.proof.value = JSON.stringify(await webauthn.startAuthentication({ optionsJSON: await challenge() }));
      } else {
        // the wallet's passkey first, when the new factor needs its consent; then the new passkey
        if (step.dataset.consent !== undefined)
          form.elements.consent.value = JSON.stringify(await webauthn.startAuthentication({ optionsJSON: JSON.parse(step.dataset.consent) }));
        if (mode === 'create') form.elements.proof.value = JSON.stringify(await webauthn.startRegistration({ optionsJSON: JSON.parse(step.dataset.options) }));
      }
      show('submitting', approving ? 'Approving…' : 'Saving…');
      form.submit();
    } catch (error) {
      button.disabled = false;
      show('error', messageOf(error));
    }
  });

  button.disabled = false;
  show('ready', '');
})();
