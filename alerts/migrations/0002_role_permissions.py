"""Grant the role groups their alert permissions."""

from django.db import migrations

GRANTS = {
    "Analyst": {"alert": ["view"], "alertevent": ["view"]},
    "Focal point": {
        "alert": ["view", "change"], "alertevent": ["view", "add"],
        "notification": ["view"], "subscription": ["view", "add", "change", "delete"],
        "digest": ["view"],
    },
    "Administrator": {
        model: ["view", "add", "change", "delete"]
        for model in ["alert", "alertevent", "notification", "subscription", "digest",
                      "alertsettings", "runevaluation", "redflagcheck"]
    },
}


def grant(apps, schema_editor):
    from django.contrib.auth.management import create_permissions

    app_config = apps.get_app_config("alerts")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, models in GRANTS.items():
        group, _ = Group.objects.get_or_create(name=role)
        for model, actions in models.items():
            for action in actions:
                group.permissions.add(Permission.objects.get(
                    content_type__app_label="alerts", codename=f"{action}_{model}"))


def revoke(apps, schema_editor):
    Permission = apps.get_model("auth", "Permission")
    for group in apps.get_model("auth", "Group").objects.filter(name__in=list(GRANTS)):
        group.permissions.remove(*Permission.objects.filter(content_type__app_label="alerts"))


class Migration(migrations.Migration):
    dependencies = [
        ("alerts", "0001_initial"),
        ("indicators", "0002_roles"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
