/**
 * The tool gate shared by the MCP gateway (`guard-mcp proxy`) and the Claude Code hook (`guard hook claude-code`):
 * a tool call the policy's `tools` section maps to an action runs only once a human approved it in Slack, with the
 * approver's edits, and only if the receipt verifies for exactly the arguments that will run.
 */
export { ClaimStore } from './claims.js';
export { defaultRepo, GateConfigError, loadToolsSection, receiptKeyProvider } from './config.js';
export {
  baseKey,
  refusalMessage,
  runGate,
  type GateCall,
  type GatedDecision,
  type GateOptions,
  type GateOutcome,
} from './gate.js';
