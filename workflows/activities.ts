import { proxyActivities } from '@temporalio/workflow';
import type { ArchiveActivities } from '../activities/archive.js';
import type { SlackActivityContract } from './messages.js';

/** Slack being down for a while must not lose the message: retried with backoff for up to an hour. */
export const slack = proxyActivities<SlackActivityContract>({
  startToCloseTimeout: '15s',
  scheduleToCloseTimeout: '1h',
  retry: { initialInterval: '500ms', backoffCoefficient: 2, maximumInterval: '30s' },
});

/** A refusal told minutes late helps nobody: a few retries, then give up. */
export const notices = proxyActivities<Pick<SlackActivityContract, 'tellRefusal'>>({
  startToCloseTimeout: '10s',
  scheduleToCloseTimeout: '2m',
  retry: { initialInterval: '500ms', backoffCoefficient: 2, maximumInterval: '10s' },
});

/** Retried without limit: a request stays open (so unpurgeable) until its record is archived. */
export const archive = proxyActivities<ArchiveActivities>({
  startToCloseTimeout: '30s',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '5m' },
});
