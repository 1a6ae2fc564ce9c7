#!/usr/bin/env python3
"""Drives the Stratus dashboard in headless Chromium (Selenium and chromium-driver).

Usage: dashboard_browser.py API_URL ARTIFACTS_DIR
Environment: ADMIN_KEY/ADMIN_SECRET (cloudadmin), READER_KEY/READER_SECRET (a member of acme who
may not reboot), EC2_URL, S3_URL, ALICE_KEY/ALICE_SECRET (acme's sysadmin), REGION.

Uploads the examples' image files as alice (bucket images), signs in, sees the examples' instances Running, opens web-1, sees a reboot made elsewhere (EC2)
arrive live without a reload, reboots it from the page, is refused an action as the reader, signs
out; and checks a request without the cookie, or with a wrong CSRF token, is refused. Saves a
screenshot of each main screen into ARTIFACTS_DIR and checks none is blank. Prints one line per
check; exits 1 at the first failure.
"""
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import boto3
from PIL import Image
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

API, ARTIFACTS = sys.argv[1].rstrip("/"), sys.argv[2]
os.makedirs(ARTIFACTS, exist_ok=True)


def check(condition, what):
    print(("ok   " if condition else "FAIL ") + what, flush=True)
    if not condition:
        try:
            shot("failure")
            print(driver.page_source[:3000], flush=True)
        finally:
            driver.quit()
        sys.exit(1)


def shot(name):
    path = os.path.join(ARTIFACTS, f"dashboard-{name}.png")
    driver.save_screenshot(path)
    with Image.open(path) as image:
        colors = image.convert("RGB").getcolors(maxcolors=1 << 20)
        distinct = len(colors) if colors else 1 << 20
    return path, distinct


def screenshot(name):
    path, distinct = shot(name)
    check(distinct >= 8, f"screenshot {os.path.basename(path)} is not blank ({distinct} colours)")


def wait_for(css, timeout=20):
    return WebDriverWait(driver, timeout).until(EC.presence_of_element_located((By.CSS_SELECTOR, css)))


def sign_in(key, secret):
    driver.get(API + "/ui")
    wait_for("form#login")
    driver.find_element(By.NAME, "accessKey").send_keys(key)
    driver.find_element(By.NAME, "secretKey").send_keys(secret)
    driver.find_element(By.ID, "login-submit").click()
    wait_for("#user")


def sign_out():
    driver.find_element(By.ID, "logout").click()
    wait_for("form#login")


options = webdriver.ChromeOptions()
options.binary_location = "/usr/bin/chromium"
for argument in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,1000"]:
    options.add_argument(argument)
driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
driver.set_page_load_timeout(30)

def alice(service, url):
    return boto3.client(service, endpoint_url=url, region_name=os.environ.get("REGION", "nova"),
                        aws_access_key_id=os.environ["ALICE_KEY"], aws_secret_access_key=os.environ["ALICE_SECRET"])


try:
    # The examples' image, as make run uploads it (the test driver boots nothing, so any 1 MiB will do).
    s3 = alice("s3", os.environ["S3_URL"])
    s3.create_bucket(Bucket="images")
    for name in ("disk.raw", "vmlinux", "initrd.cpio"):
        s3.put_object(Bucket="images", Key=f"tiny/{name}", Body=b"\0" * (1 << 20))

    # Without a session every page leads to the sign-in page.
    driver.get(API + "/ui/resources?kind=Instance")
    wait_for("form#login")
    check("/ui/login" in driver.current_url, "a page without a session redirects to the sign-in page")
    driver.find_element(By.NAME, "accessKey").send_keys(os.environ["ADMIN_KEY"])
    driver.find_element(By.NAME, "secretKey").send_keys("not-the-secret")
    driver.find_element(By.ID, "login-submit").click()
    check("do not match" in wait_for("#error").text, "a wrong secret is refused with a message")
    screenshot("login")

    sign_in(os.environ["ADMIN_KEY"], os.environ["ADMIN_SECRET"])
    cookie = driver.get_cookie("stratus_session")
    check(cookie is not None and cookie.get("httpOnly") and cookie.get("sameSite") == "Strict",
          f"the session cookie is HttpOnly and SameSite=Strict: {cookie and {k: cookie[k] for k in ('httpOnly', 'sameSite', 'path')}}")
    check(driver.find_element(By.ID, "user").text == "admin", "signed in as admin")

    deadline = time.monotonic() + 90
    while True:
        driver.get(API + "/ui/resources?kind=Instance&project=acme&phase=Running")
        if wait_for("#count").text.endswith("of 3") or time.monotonic() > deadline:
            break
        time.sleep(1)
    driver.get(API + "/ui?project=acme")
    ready = int(wait_for('[data-health="Ready"]').text)
    check(ready >= 3, f"the overview's health bar counts the Ready resources of acme ({ready})")
    used = driver.find_element(By.CSS_SELECTOR, 'tr[data-quota="instances"] td.used').text
    check(used == "3", f"the quota table shows 3 instances used (the examples'): {used}")
    WebDriverWait(driver, 10).until(lambda d: d.find_element(By.ID, "live").text == "live")
    check(True, "the overview's live feed is connected")
    screenshot("overview")

    driver.get(API + "/ui/resources?kind=Instance&project=acme")
    rows = {row.get_attribute("data-name"): row.find_element(By.CSS_SELECTOR, "td.phase").text
            for row in driver.find_elements(By.CSS_SELECTOR, "table#resources tbody tr")}
    check({"web-1", "web-2", "db-1"} <= set(rows) and all(rows[name] == "Running" for name in ("web-1", "web-2", "db-1")),
          f"the instance list shows the examples' instances Running: {rows}")
    driver.get(API + "/ui/resources?kind=Instance&project=acme&label=tier%3Dweb")
    labelled = [row.get_attribute("data-name") for row in driver.find_elements(By.CSS_SELECTOR, "table#resources tbody tr")]
    check(sorted(labelled) == ["web-1", "web-2"], f"the label filter tier=web keeps web-1 and web-2: {labelled}")
    driver.get(API + "/ui/resources?kind=Instance&project=acme")
    screenshot("instances")

    driver.find_element(By.CSS_SELECTOR, 'tr[data-name="web-1"] td.name a').click()
    wait_for("#phase")
    check(driver.find_element(By.ID, "phase").text == "Running", "web-1's page says Running")
    check('"instanceType"' in driver.find_element(By.ID, "spec").text, "and shows its spec")
    check(len(driver.find_elements(By.CSS_SELECTOR, "table#conditions tr[data-condition=Ready]")) == 1, "and its Ready condition")
    WebDriverWait(driver, 10).until(lambda d: d.find_element(By.ID, "live").text == "live")
    before = len(driver.find_elements(By.CSS_SELECTOR, '#events li[data-reason="Rebooted"]'))
    driver.execute_script("window.stratusMarker = 42")

    # A reboot made elsewhere (the EC2 API) arrives on the open page, which does not reload.
    ec2 = alice("ec2", os.environ["EC2_URL"])
    instance_id = driver.find_element(By.CSS_SELECTOR, "section.card code").text
    started = time.monotonic()
    ec2.reboot_instances(InstanceIds=[instance_id])
    WebDriverWait(driver, 15).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, '#events li[data-reason="Rebooted"]')) > before)
    check(driver.execute_script("return window.stratusMarker") == 42,
          f"a reboot through EC2 appeared live on the open page in {time.monotonic() - started:.2f} s, without a reload")
    screenshot("instance")

    driver.find_element(By.ID, "action-reboot").click()
    check("Reboot requested" in wait_for("#notice").text, "the page's Reboot button reboots web-1")
    newest = wait_for('#events li[data-reason="Rebooted"]').text
    check("through the dashboard" in newest and "admin" in newest, f"and its event names the user and the dashboard: {newest}")

    # A wrong CSRF token, with a valid session, is refused; so is an action without the cookie.
    session = driver.get_cookie("stratus_session")["value"]
    form = urllib.parse.urlencode({"csrf": "wrong", "kind": "Instance", "project": "acme", "name": "web-1", "action": "reboot"}).encode()
    request = urllib.request.Request(API + "/ui/action", data=form, headers={"Cookie": f"stratus_session={session}"})
    try:
        urllib.request.urlopen(request)
        status = 200
    except urllib.error.HTTPError as error:
        status = error.code
    check(status == 403, f"an action with the session cookie and a wrong CSRF token is refused: {status}")

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        opener.open(urllib.request.Request(API + "/ui/action", data=form))
        status, location = 200, ""
    except urllib.error.HTTPError as error:
        status, location = error.code, error.headers.get("Location", "")
    check(status == 303 and location.startswith("/ui/login"), f"an action without the cookie goes to the sign-in page: {status} {location}")
    try:
        urllib.request.urlopen(API + "/ui/events")
        status = 200
    except urllib.error.HTTPError as error:
        status = error.code
    check(status == 401, f"the live feed without the cookie is refused: {status}")

    sign_out()
    try:
        opener.open(urllib.request.Request(API + "/ui", headers={"Cookie": f"stratus_session={session}"}))
        status = 200
    except urllib.error.HTTPError as error:
        status = error.code
    check(status == 303, f"after signing out the old cookie is refused: {status}")

    # A member who may read instances but not change them: no buttons, and a forged form is refused.
    sign_in(os.environ["READER_KEY"], os.environ["READER_SECRET"])
    driver.get(API + "/ui/resource?kind=Instance&project=acme&name=web-1")
    wait_for("#read-only")
    check(len(driver.find_elements(By.CSS_SELECTOR, "form.action")) == 0, "the reader sees web-1 without action buttons")
    answer = driver.execute_script("""
        const csrf = document.querySelector('form.logout input[name=csrf]').value;
        const body = new URLSearchParams({csrf, kind: 'Instance', project: 'acme', name: 'web-1', action: 'reboot'});
        const response = await fetch('/ui/action', {method: 'POST', body});
        return [response.status, await response.text()];
    """)
    check(answer[0] == 403 and "may not" in answer[1], f"the reader's reboot, with a valid CSRF token, is refused by role: {answer[0]}")
    screenshot("refused-reader")
    sign_out()
    check(True, "signed out")
finally:
    driver.quit()
print("dashboard: every check passed", flush=True)
