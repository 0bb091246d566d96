/** What a clicker reads when their click is refused (an ephemeral message in the button's channel). */

/** Each refusal reason's text; other reasons show the reducer's own message. */
const REFUSAL_TEXT: Record<string, string> = {
  not_authorized: 'You are not authorized to do that on this request.',
  duplicate: 'You have already approved this request.',
  self_approval: 'You cannot approve your own request.',
  not_ready: 'Required personas must acknowledge before a decision.',
  already_decided: 'This request has already been decided.',
  already_acked: 'That persona has already been acknowledged.',
  stale_payload: 'The parameters changed since this message was shown; look again before approving.',
  overrides_not_allowed: 'This action does not allow edits.',
  not_found: 'This request no longer exists.',
};

export function refusalText(reason: string, message = reason): string {
  const text = REFUSAL_TEXT[reason] ?? message;
  return text.charAt(0).toUpperCase() + text.slice(1);
}
