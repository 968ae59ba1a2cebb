import type { Plan } from '../plan/types.ts';
import { validatePlan } from '../plan/validate.ts';
import { estimatePlan, type PlanEstimate } from './estimate.ts';
import type { NodeShape } from './placement.ts';
import type { PlanningInput, Strategy } from './types.ts';

export interface PlannedStrategy {
  plan: Plan;
  estimate: PlanEstimate;
}

/** The planner pipeline for each strategy: propose → validate → estimate (and place). */
export function runPlanner(input: PlanningInput, strategies: Strategy[], node: NodeShape | null): PlannedStrategy[] {
  return strategies.map((s) => {
    const plan = s.propose(input);
    validatePlan(plan, input.config, `the ${s.name} plan`);
    return { plan, estimate: estimatePlan(input, plan, node) };
  });
}
