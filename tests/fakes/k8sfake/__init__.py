# SPDX-License-Identifier: Apache-2.0
"""Pieces of the strict Kubernetes API test double (tests/fakes/k8s_api.py).

  status.py      metav1.Status bodies and the apimachinery error constructors
  selectors.py   field selectors, label selectors (query strings and LabelSelector)
  patch.py       JSON merge patch, strategic merge patch, JSON patch (RFC 6902)
  resources.py   the resources served, their paths, defaults and validation
  disruption.py  PodDisruptionBudget status as the disruption controller computes it
  state.py       the in-memory store, watch fan-out, authentication and RBAC
  verbs.py       get / list / watch / create / update / patch / delete / eviction
"""
