/** The cause a stuck request's answer names, read from the newest workflow task failure of its history. */
import { msNumberToTs } from '@temporalio/common/lib/time.js';
import proto from '@temporalio/proto';
import { failureOf } from '../../gateway/watch-source.js';

const { WorkflowTaskFailedCause, TimeoutType } = proto.temporal.api.enums.v1;
const at = (iso: string) => msNumberToTs(Date.parse(iso));

test('a failed task: its cause and message, at the time of the failure', () => {
  const found = failureOf([
    { eventTime: at('2026-12-02T05:00:03Z'), workflowTaskScheduledEventAttributes: {} },
    {
      eventTime: at('2026-12-02T05:00:02Z'),
      workflowTaskFailedEventAttributes: {
        cause: WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_NON_DETERMINISTIC_ERROR,
        failure: { message: 'nondeterminism: command mismatch' },
      },
    },
    {
      eventTime: at('2026-12-02T05:00:01Z'),
      workflowTaskTimedOutEventAttributes: { timeoutType: TimeoutType.TIMEOUT_TYPE_START_TO_CLOSE },
    },
  ]);
  expect(found).toEqual({
    since: '2026-12-02T05:00:02.000Z',
    cause: 'workflow task failed (NON_DETERMINISTIC_ERROR): nondeterminism: command mismatch',
  });
});

test('a timed-out task, a message cut to 500 characters, and a history with neither', () => {
  expect(
    failureOf([{ workflowTaskTimedOutEventAttributes: { timeoutType: TimeoutType.TIMEOUT_TYPE_START_TO_CLOSE } }])
      ?.cause,
  ).toBe('workflow task timed out (START_TO_CLOSE)');
  const long = failureOf([{ workflowTaskFailedEventAttributes: { failure: { message: 'x'.repeat(2000) } } }]);
  expect(long?.cause).toHaveLength(500);
  expect(failureOf([{ workflowTaskScheduledEventAttributes: {} }])).toBeNull();
});
