"""The middleware as a componentize-py guest: CPython inside the component, policy in ``policy.py``."""

import policy
import wit_world
from wit_world import Action, Action_Continue, Action_Modify, Action_Reject, Modification, Request, Response


def _action(decision: tuple) -> Action:
    if decision[0] == "reject":
        return Action_Reject(decision[1])
    if decision[0] == "modify":
        return Action_Modify(Modification(decision[1], decision[2], decision[3]))
    return Action_Continue()


class WitWorld(wit_world.WitWorld):
    def on_request(self, req: Request) -> Action:
        return _action(policy.on_request(req.method, req.path, req.headers, req.body))

    def on_response(self, resp: Response) -> Action:
        return _action(policy.on_response(resp.status, resp.headers, resp.body))
